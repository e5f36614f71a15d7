use crate::cli::CheckArgs;
use crate::error::Outcome;

pub fn check(_args: CheckArgs) -> anyhow::Result<Outcome> {
    Err(super::not_built("check"))
}
