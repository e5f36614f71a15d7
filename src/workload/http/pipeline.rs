//! HTTP/1.1 pipelining (`pipeline = N`, `--pipeline N`): a lane's group of
//! up to N tickets has its request heads written in one write over the
//! clear-text connection, and their responses read in order, as wrk's
//! pipeline script and `h2load -m` do. Each request's latency counts from
//! that write (its schedule, in open loop): the wait behind the responses
//! before it on the connection is part of it.

use std::time::Instant;

use super::conn::{self, Lane, Sender, Timing};
use super::h1::Failure;
use super::{started_at, HttpProbeConfig, Outbox, RequestParts, Response, Sample, Ticket, Want};

/// One lane's group of tickets, pipelined.
pub(super) struct Group<'a> {
    pub client: u32,
    pub tickets: &'a mut Vec<Ticket>,
    pub scratch: &'a mut Vec<u8>,
}

/// How one pipelined request ended.
struct Done {
    outcome: Result<Response, &'static str>,
    timing: Timing,
    end: Instant,
}

impl Group<'_> {
    /// Sends the group and hands each request's sample to the outbox; the
    /// group's deadline is the request timeout from the write. False once
    /// the collector is gone.
    pub(super) async fn go(
        self,
        lane: &mut Lane,
        cfg: &HttpProbeConfig,
        parts: &RequestParts,
        outbox: &Outbox,
    ) -> bool {
        let Group {
            client,
            tickets,
            scratch,
        } = self;
        let wants: Vec<Want> = tickets
            .iter_mut()
            .map(|t| Want::of(t.object.take(), t.index, cfg))
            .collect();
        let sent_at = Instant::now();
        let starts: Vec<Instant> = tickets
            .iter()
            .map(|t| started_at(t.scheduled, sent_at))
            .collect();
        let mut done = Vec::with_capacity(wants.len());
        let exchange = exchange(lane, cfg, parts, &wants, &starts, scratch, &mut done);
        // Requests left unanswered get the class that ended the group.
        let rest = match tokio::time::timeout(cfg.timeout, exchange).await {
            Ok(Ok(())) => "other",
            Ok(Err(class)) => class,
            Err(_elapsed) => "timeout",
        };
        let mut done = done.into_iter();
        for (ticket, want) in tickets.drain(..).zip(wants) {
            let d = done.next().unwrap_or_else(|| Done {
                outcome: Err(rest),
                timing: Timing::default(),
                end: Instant::now(),
            });
            let sample = Sample::new(
                client,
                want,
                ticket.scheduled,
                sent_at,
                d.end,
                d.timing,
                d.outcome,
            );
            if !outbox.add(sample, d.end).await {
                return false;
            }
        }
        true
    }
}

/// Writes the heads of the requests not yet answered and reads their
/// responses into `done`, in order. A connection that ends with some
/// unanswered (the server closed it, or said `Connection: close`) has
/// them sent again on a new one; again only after a response came, so a
/// server that answers none fails the group instead of looping. Err: the
/// class of the requests left.
async fn exchange(
    lane: &mut Lane,
    cfg: &HttpProbeConfig,
    parts: &RequestParts,
    wants: &[Want],
    starts: &[Instant],
    scratch: &mut Vec<u8>,
    done: &mut Vec<Done>,
) -> Result<(), &'static str> {
    // The times of opening a connection go to the first request sent over it.
    let mut timing = Timing::default();
    let mut sender = lane.acquire(cfg, &mut timing).await?;
    let mut retried = false;
    loop {
        let Sender::Raw(conn) = &mut sender else {
            // Validation keeps pipelining to clear-text HTTP/1.1.
            return Err("other");
        };
        let first = done.len();
        scratch.clear();
        for want in &wants[first..] {
            parts.append_h1_head(want, scratch).ok_or("other")?;
        }
        let mut failure = conn.send(scratch, wants.len() - first).await.err();
        if failure.is_none() {
            for &started in &starts[first..] {
                let mut ttfb = None;
                match conn.receive(|| ttfb = Some(started.elapsed())).await {
                    Ok(answer) => {
                        let timing = Timing {
                            ttfb,
                            protocol: Some(conn::Protocol::Http1),
                            ..std::mem::take(&mut timing)
                        };
                        done.push(Done {
                            outcome: Ok(Response {
                                status: answer.status,
                                bytes: answer.bytes,
                                cache: answer.cache,
                            }),
                            timing,
                            end: Instant::now(),
                        });
                        retried = false;
                        if !conn.reusable() {
                            break;
                        }
                    }
                    Err(f) => {
                        failure = Some(f);
                        break;
                    }
                }
            }
        }
        if done.len() == wants.len() {
            lane.release(sender, cfg.keep_alive);
            return Ok(());
        }
        match failure {
            // Closed after a response, or before a byte of the next: the
            // rest were not processed.
            None | Some(Failure::Stale) if !retried => {
                retried = true;
                timing = Timing::default();
                sender = Box::pin(conn::open(cfg, &mut timing)).await?;
            }
            None | Some(Failure::Stale) => return Err("reset"),
            Some(Failure::Class(class)) => return Err(class),
        }
    }
}
