use crate::cli::RunArgs;
use crate::error::Outcome;

pub async fn run(_args: RunArgs) -> anyhow::Result<Outcome> {
    Err(super::not_built("run"))
}
