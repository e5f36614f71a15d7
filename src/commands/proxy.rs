use crate::cli::ProxyArgs;
use crate::error::Outcome;

pub async fn proxy(_args: ProxyArgs) -> anyhow::Result<Outcome> {
    Err(super::not_built("proxy"))
}
