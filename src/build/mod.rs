//! Building: the build graph (derivations with ids known up front) and the scheduler that
//! realises it.

pub mod graph;
pub mod sandbox;
pub mod scheduler;

pub use graph::{BuildContext, BuildError, Graph, NodeIndex};
pub use scheduler::{
    plan, plan_with, realise, realise_with, substitute, Counts, RealiseError, Realised, Status,
    Substituter,
};
