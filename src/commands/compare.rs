use crate::cli::CompareArgs;
use crate::error::Outcome;

pub fn compare(_args: CompareArgs) -> anyhow::Result<Outcome> {
    Err(super::not_built("compare"))
}
