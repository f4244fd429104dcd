//! Eight processes adding the same tree at once: one build, one row, one path, no errors, and
//! waiters woken as soon as the builder is done.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;

#[test]
fn eight_processes_adding_the_same_tree_build_it_once() {
    let store = TempStore::new();
    let src = tempfile::tempdir().unwrap();
    let tree = src.path().join("shared");
    make_tree(&tree, 300);
    // Create the store first so all eight race on the entry, not on the store's creation.
    run_ok(pystore(store.path()).arg("verify"));

    // Whoever builds pauses 700 ms before the rename, so the others are sure to queue behind it.
    let start = Instant::now();
    let children: Vec<_> = (0..8)
        .map(|_| {
            pystore(store.path())
                .args(["--json", "add"])
                .arg(&tree)
                .env("PYSTORE_FAILPOINT", "before-rename:sleep=700")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let waiters: Vec<_> = children
        .into_iter()
        .map(|mut child| {
            std::thread::spawn(move || {
                let stderr = BufReader::new(child.stderr.take().unwrap());
                let lines: Vec<String> = stderr.lines().map(Result::unwrap).collect();
                let mut stdout = String::new();
                std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout)
                    .unwrap();
                let status = child.wait().unwrap();
                (Instant::now(), status, stdout, lines)
            })
        })
        .collect();
    let results: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap()).collect();

    let mut builder_done = None;
    let mut waiter_done = Vec::new();
    let mut paths = Vec::new();
    for (done, status, stdout, stderr) in &results {
        assert!(status.success(), "{status:?}: {stderr:?}");
        let value: serde_json::Value = serde_json::from_str(stdout).unwrap();
        paths.push(value[0]["path"].as_str().unwrap().to_owned());
        if value[0]["built"] == true {
            assert!(builder_done.is_none(), "exactly one process builds");
            assert!(stderr
                .iter()
                .any(|l| l == "pystore: failpoint before-rename reached"));
            builder_done = Some(*done);
        } else {
            assert!(
                !stderr.iter().any(|l| l.contains("failpoint")),
                "a waiter never builds: {stderr:?}"
            );
            waiter_done.push(*done);
        }
    }
    let builder_done = builder_done.expect("one process built the entry");
    assert!(
        paths.windows(2).all(|w| w[0] == w[1]),
        "all print the same path: {paths:?}"
    );
    assert_eq!(list(&store.path().join("entries")).len(), 1);
    let verify = json(pystore(store.path()).arg("verify"));
    assert_eq!(verify["checked"], 1, "one row");
    assert_eq!(verify["ok"], true);

    // Waiters block on the entry's lock and are woken by the kernel when it is released; they do
    // not poll. Measured from the builder's exit (it releases the lock just before exiting), the
    // last waiter must be done within 100 ms (we allow for the test's own scheduling jitter by
    // comparing exit times seen by this process, which only makes the bound stricter for us).
    let last_waiter = waiter_done.iter().max().unwrap();
    let lag = last_waiter.saturating_duration_since(builder_done);
    eprintln!(
        "builder done after {:?}; last waiter {:?} after it",
        builder_done - start,
        lag
    );
    assert!(
        lag < Duration::from_millis(100),
        "last waiter finished {lag:?} after the builder"
    );
}
