//! Building: the build graph (derivations with ids known up front), the scheduler that
//! realises it, and the reproducibility check that rebuilds it.

pub mod check;
pub mod graph;
pub mod sandbox;
pub mod scheduler;
pub mod timings;

pub use check::{check, CheckError, CheckReport};
pub use graph::{BuildContext, BuildError, Graph, NodeIndex};
pub use scheduler::{
    plan, plan_with, realise, realise_counted, realise_timed, substitute, Counts, RealiseError,
    Realised, Status, Substituter,
};
