use crate::cli::ServeArgs;
use crate::error::Outcome;

pub async fn serve(_args: ServeArgs) -> anyhow::Result<Outcome> {
    Err(super::not_built("serve"))
}
