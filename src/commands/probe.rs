use crate::cli::{HttpProbeArgs, UdpProbeArgs};
use crate::error::Outcome;

pub async fn udp(_args: UdpProbeArgs) -> anyhow::Result<Outcome> {
    Err(super::not_built("probe udp"))
}

pub async fn http(_args: HttpProbeArgs) -> anyhow::Result<Outcome> {
    Err(super::not_built("probe http"))
}
