//! The tuner: samplers decide which configurations to try, schedulers decide which
//! members keep training. Both are host-side and never touch a backend buffer.

pub mod auto;
pub mod normal;
pub mod pareto;
pub mod pruner;
pub mod sampler;
pub mod scheduler;
pub mod study;
