//! The scheduler: dependency order, parallel builds, no work (and no request) when valid, errors.

use std::collections::BTreeMap;
use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::common::http::{Response, Server};
use crate::common::TempStore;
use pystore::build::{plan, realise, Graph, Status};
use pystore::fetch::credentials::Credentials;
use pystore::fetch::{FetchConfig, Fetcher, FixedOutput};
use pystore::store::{EntryName, Store};
use reqwest::Url;
use serde_json::json;
use sha2::Digest;

/// source (fetched) ← left, right ← top: top's file is left's + right's.
fn diamond(
    graph: &mut Graph,
    url: &str,
    body: &[u8],
    builds: &Arc<AtomicUsize>,
    fail_right: bool,
) -> usize {
    let source = graph
        .fetch(FixedOutput {
            name: EntryName::new("source.txt").unwrap(),
            sha256: sha2::Sha256::digest(body).into(),
            size: Some(body.len() as u64),
            urls: vec![Url::parse(url).unwrap()],
        })
        .unwrap();
    let mut side = |name: &str, fail: bool| {
        let counter = builds.clone();
        let suffix = name.to_owned();
        graph
            .derive(
                EntryName::new(name).unwrap(),
                ("append", "1"),
                json!({ "suffix": name }),
                BTreeMap::from([("src".to_owned(), source)]),
                Box::new(move |ctx| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    if fail {
                        return Err(format!("{suffix} refuses to build").into());
                    }
                    let mut text = fs::read_to_string(&ctx.input("src")?.path)?;
                    text.push_str(&suffix);
                    fs::write(ctx.out, text)?;
                    Ok(())
                }),
            )
            .unwrap()
    };
    let left = side("left", false);
    let right = side("right", fail_right);
    let counter = builds.clone();
    graph
        .derive(
            EntryName::new("top").unwrap(),
            ("concat", "1"),
            json!({}),
            BTreeMap::from([("a".to_owned(), left), ("b".to_owned(), right)]),
            Box::new(move |ctx| {
                counter.fetch_add(1, Ordering::SeqCst);
                let a = fs::read_to_string(&ctx.input("a")?.path)?;
                let b = fs::read_to_string(&ctx.input("b")?.path)?;
                fs::create_dir(ctx.out)?;
                fs::write(ctx.out.join("both"), format!("{a}+{b}"))?;
                Ok(())
            }),
        )
        .unwrap()
}

/// A server for the diamond's source, a fresh store, and a build counter.
fn setup() -> (Vec<u8>, Server, TempStore, Arc<AtomicUsize>) {
    let body = b"base-".to_vec();
    let served = body.clone();
    let server = Server::start(move |_| Response::ok(served.clone()));
    (
        body,
        server,
        TempStore::new(),
        Arc::new(AtomicUsize::new(0)),
    )
}

fn fetcher(store: &Store) -> Fetcher<'_> {
    Fetcher::new(
        store,
        FetchConfig {
            jobs: 4,
            ..Default::default()
        },
        Credentials::default(),
    )
}

#[test]
fn builds_in_order_once_and_then_does_nothing() {
    let (body, server, dir, builds) = setup();
    let store = Store::open(dir.path()).unwrap();
    let mut graph = Graph::new();
    let top = diamond(
        &mut graph,
        &server.url("/source.txt"),
        &body,
        &builds,
        false,
    );

    let statuses = plan(&store, &graph, &[top]).unwrap();
    assert_eq!(
        statuses,
        [Status::Fetch, Status::Build, Status::Build, Status::Build]
    );
    let entries = realise(&store, &fetcher(&store), &graph, &[top], 2, false).unwrap();
    assert_eq!(
        fs::read_to_string(entries[&top].path.join("both")).unwrap(),
        "base-left+base-right"
    );
    assert_eq!(builds.load(Ordering::SeqCst), 3);
    assert_eq!(server.requests().len(), 1);
    let closure = store.closure(&[entries[&top].clone()]).unwrap();
    assert_eq!(
        closure.len(),
        4,
        "the top entry refers to its inputs, transitively"
    );

    // Again, with a graph built afresh (ids are recomputed, not remembered): nothing happens.
    let mut again = Graph::new();
    let top2 = diamond(
        &mut again,
        &server.url("/source.txt"),
        &body,
        &builds,
        false,
    );
    assert_eq!(
        plan(&store, &again, &[top2]).unwrap(),
        [
            Status::Unneeded,
            Status::Unneeded,
            Status::Unneeded,
            Status::Valid
        ]
    );
    realise(&store, &fetcher(&store), &again, &[top2], 2, false).unwrap();
    assert_eq!(builds.load(Ordering::SeqCst), 3, "no builder ran");
    assert_eq!(server.requests().len(), 1, "no request");
}

#[test]
fn a_valid_root_needs_no_inputs_even_when_they_cannot_be_fetched() {
    let (body, server, dir, builds) = setup();
    let store = Store::open(dir.path()).unwrap();
    let mut graph = Graph::new();
    let top = diamond(
        &mut graph,
        &server.url("/source.txt"),
        &body,
        &builds,
        false,
    );
    realise(&store, &fetcher(&store), &graph, &[top], 2, false).unwrap();
    drop(server);
    let mut offline = Graph::new();
    let top = diamond(
        &mut offline,
        "http://127.0.0.1:9/gone",
        &body,
        &builds,
        false,
    );
    let config = FetchConfig {
        offline: true,
        jobs: 1,
        ..Default::default()
    };
    realise(
        &store,
        &Fetcher::new(&store, config, Credentials::default()),
        &offline,
        &[top],
        2,
        false,
    )
    .unwrap();
}

#[test]
fn a_failing_builder_is_reported_and_nothing_depending_on_it_is_built() {
    let (body, server, dir, builds) = setup();
    let store = Store::open(dir.path()).unwrap();
    let mut graph = Graph::new();
    let top = diamond(&mut graph, &server.url("/source.txt"), &body, &builds, true);
    let err = realise(&store, &fetcher(&store), &graph, &[top], 1, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "building right failed: right refuses to build"
    );
    assert!(store.query(&graph.node(top).id).unwrap().is_none());
    assert!(builds.load(Ordering::SeqCst) <= 2, "top never ran");
}

/// A derived node writing `text`, failing when `fail`.
fn leaf(graph: &mut Graph, name: &str, fail: bool) -> usize {
    let text = name.to_owned();
    graph
        .derive(
            EntryName::new(name).unwrap(),
            ("leaf", "1"),
            json!({ "text": name }),
            BTreeMap::new(),
            Box::new(move |ctx| {
                if fail {
                    return Err(format!("{text} refuses to build").into());
                }
                fs::write(ctx.out, &text)?;
                Ok(())
            }),
        )
        .unwrap()
}

#[test]
fn an_after_edge_orders_builds_without_changing_ids_or_references() {
    let dir = TempStore::new();
    let store = Store::open(dir.path()).unwrap();
    let fetch = fetcher(&store);

    let mut plain = Graph::new();
    let alone = leaf(&mut plain, "zip", false);
    let id_alone = plain.node(alone).id.clone();

    // A failing check that the node must wait for: the node is not built.
    let mut graph = Graph::new();
    let zip = leaf(&mut graph, "zip", false);
    let check = leaf(&mut graph, "check", true);
    graph.after(zip, check);
    assert_eq!(graph.node(zip).id, id_alone, "after is not part of the id");
    assert_eq!(
        plan(&store, &graph, &[zip]).unwrap(),
        [Status::Build, Status::Build],
        "planning the node plans what it waits for"
    );
    let err = realise(&store, &fetch, &graph, &[zip], 2, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "building check failed: check refuses to build"
    );
    assert!(store.query(&graph.node(zip).id).unwrap().is_none());

    // A passing check: both are built, and the node does not refer to the check.
    let mut graph = Graph::new();
    let zip = leaf(&mut graph, "zip", false);
    let check = leaf(&mut graph, "check-ok", false);
    graph.after(zip, check);
    let entries = realise(&store, &fetch, &graph, &[zip], 2, false).unwrap();
    assert!(store.query(&graph.node(check).id).unwrap().is_some());
    assert_eq!(store.closure(&[entries[&zip].clone()]).unwrap().len(), 1);
}

#[test]
fn a_panicking_builder_fails_its_build_and_the_other_workers_finish() {
    let dir = TempStore::new();
    let store = Store::open(dir.path()).unwrap();
    let mut graph = Graph::new();
    let boom = graph
        .derive(
            EntryName::new("boom").unwrap(),
            ("boom", "1"),
            json!({}),
            BTreeMap::new(),
            Box::new(|_ctx| panic!("boom goes the builder")),
        )
        .unwrap();
    // `after` depends on `boom`: the second worker waits for it, and must be woken.
    let after = graph
        .derive(
            EntryName::new("after").unwrap(),
            ("after", "1"),
            json!({}),
            BTreeMap::from([("boom".to_owned(), boom)]),
            Box::new(|ctx| {
                fs::write(ctx.out, "after")?;
                Ok(())
            }),
        )
        .unwrap();
    let other = leaf(&mut graph, "other", false);
    let root = dir.path().to_path_buf();
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let store = Store::open(&root).unwrap();
        let outcome = realise(&store, &fetcher(&store), &graph, &[after, other], 2, false)
            .map(|_| ())
            .map_err(|err| err.to_string());
        let _ = send.send(outcome);
    });
    drop(store);
    let outcome = receive
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("realise hung after a builder panicked");
    let err = outcome.unwrap_err();
    assert!(
        err.contains("building boom failed") && err.contains("boom goes the builder"),
        "{err}"
    );
}
