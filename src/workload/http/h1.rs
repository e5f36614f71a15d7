//! The lean HTTP/1.1 client of a clear-text workload connection: the
//! request loop writes a prebuilt request head and reads the response on
//! its own task, with no connection task, channel or header map between
//! them (hyper's client costs about twice the instructions per request).
//! Responses are parsed by `httparse`, hyper's own parser, and their body
//! framing follows hyper's client (RFC 9112 section 6.3): 1xx skipped, no
//! body on 204 and 304, chunked (decoded, trailers skipped), a
//! `Content-Length`, or until the server closes. TLS and HTTP/2 stay with
//! hyper (conn.rs).

use std::io;
use std::mem::MaybeUninit;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::conn::classify_io;
use crate::metrics::CacheMark;

/// Headers a response may carry: hyper's default limit.
const MAX_HEADERS: usize = 100;
/// The read buffer a connection starts with, and the most it grows to
/// while reading a large body (fewer reads per MiB).
const BUF_START: usize = 8 * 1024;
const BUF_BODY: usize = 64 * 1024;
/// The largest response head (status line and headers) taken, as hyper's
/// default read buffer limit; a larger one is a `bad_response`.
const MAX_HEAD: usize = 400 * 1024;

/// The request head of a GET of `path` (a valid request target), as hyper
/// writes it: lower-case names, `Host`, `User-Agent`, `Connection`.
pub(super) fn write_head(out: &mut Vec<u8>, path: &str, host: &[u8], agent: &[u8], close: bool) {
    out.clear();
    append_head(out, path, host, agent, close);
}

/// [`write_head`] after what `out` holds (pipelined heads, back to back).
pub(super) fn append_head(out: &mut Vec<u8>, path: &str, host: &[u8], agent: &[u8], close: bool) {
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host);
    out.extend_from_slice(b"\r\nuser-agent: ");
    out.extend_from_slice(agent);
    out.extend_from_slice(if close {
        b"\r\nconnection: close\r\n\r\n".as_slice()
    } else {
        b"\r\nconnection: keep-alive\r\n\r\n".as_slice()
    });
}

/// An answered request.
pub(super) struct Answer {
    pub status: u16,
    /// Body bytes (decoded, for a chunked body).
    pub bytes: u64,
    pub cache: CacheMark,
}

/// Why a request got no answer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Failure {
    /// The error class the request counts.
    Class(&'static str),
    /// The connection had served a response and ended (closed or reset)
    /// before a byte of this one: the server closed it while it was idle.
    /// The request was not processed; the caller sends it again once on
    /// a new connection.
    Stale,
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Class(classify_io(&e))
    }
}

/// How a response's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    Close,
}

/// What the head of a final response says.
struct Head {
    status: u16,
    framing: Framing,
    keep_alive: bool,
    cache: CacheMark,
}

/// A clear-text HTTP/1.1 connection, one request at a time.
pub(super) struct H1Conn {
    stream: TcpStream,
    /// Read buffer: `buf[start..end]` is received and not yet consumed.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Responses read whole over it.
    served: u64,
    /// Requests sent whose responses are not read yet.
    awaited: usize,
    /// False once a response ended the connection (`Connection: close`,
    /// HTTP/1.0 without keep-alive, a body delimited by the close).
    reusable: bool,
}

impl H1Conn {
    pub(super) fn new(stream: TcpStream) -> Self {
        H1Conn {
            stream,
            buf: vec![0; BUF_START],
            start: 0,
            end: 0,
            served: 0,
            awaited: 0,
            reusable: true,
        }
    }

    /// Whether another request may go over it.
    pub(super) fn reusable(&self) -> bool {
        self.reusable
    }

    /// Sends `head` and reads the response to its last byte; `on_head` is
    /// called when the final response's head has arrived (time to first
    /// byte).
    pub(super) async fn exchange(
        &mut self,
        head: &[u8],
        on_head: impl FnOnce(),
    ) -> Result<Answer, Failure> {
        self.send(head, 1).await?;
        self.receive(on_head).await
    }

    /// Writes `count` request heads: one, or several back to back
    /// (pipelining: their responses are then read in order by as many
    /// `receive`s).
    pub(super) async fn send(&mut self, heads: &[u8], count: usize) -> Result<(), Failure> {
        let fresh = self.served == 0;
        match self.stream.write_all(heads).await {
            Ok(()) => {
                self.awaited += count;
                Ok(())
            }
            Err(e) => Err(self.ended_early(fresh, &e)),
        }
    }

    /// Reads the next response to its last byte; `on_head` is called when
    /// its final head has arrived. A connection that had served a response
    /// and ends before a byte of this one is `Stale`: the request was not
    /// processed.
    pub(super) async fn receive(&mut self, on_head: impl FnOnce()) -> Result<Answer, Failure> {
        let fresh = self.served == 0;
        let head = self.read_head(fresh).await?;
        on_head();
        let bytes = match head.framing {
            Framing::Length(n) => self.skip(n).await.map(|()| n)?,
            Framing::Chunked => self.chunked().await?,
            Framing::Close => self.until_close().await?,
        };
        self.served += 1;
        self.awaited = self.awaited.saturating_sub(1);
        // Bytes past the last response awaited (a server that sent more
        // than it framed) belong to no request: the connection is not
        // reused. Pipelined, bytes past an earlier one are the next.
        let extra = self.awaited == 0 && self.start != self.end;
        if !head.keep_alive || head.framing == Framing::Close || extra {
            self.reusable = false;
        }
        Ok(Answer {
            status: head.status,
            bytes,
            cache: head.cache,
        })
    }

    /// The connection failed before any byte of the response.
    fn ended_early(&mut self, fresh: bool, e: &io::Error) -> Failure {
        self.reusable = false;
        let closed = matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::UnexpectedEof
        );
        if closed && !fresh {
            return Failure::Stale;
        }
        Failure::Class(classify_io(e))
    }

    /// Reads more into the buffer (compacting or growing it to `limit`
    /// when full); Ok(false) when the server closed the connection.
    async fn fill(&mut self, limit: usize) -> Result<bool, Failure> {
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            } else if self.buf.len() < limit {
                self.buf.resize((self.buf.len() * 2).min(limit), 0);
            } else {
                self.reusable = false;
                return Err(Failure::Class("bad_response"));
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n > 0)
    }

    /// Reads the head of the final response (1xx ones skipped).
    async fn read_head(&mut self, fresh: bool) -> Result<Head, Failure> {
        let mut received = false;
        loop {
            if self.start < self.end {
                received = true;
                match parse_head(&self.buf[self.start..self.end]) {
                    Ok(Some((len, head))) => {
                        self.start += len;
                        match head {
                            Some(head) => return Ok(head),
                            None => continue,
                        }
                    }
                    Ok(None) => {}
                    Err(class) => {
                        self.reusable = false;
                        return Err(Failure::Class(class));
                    }
                }
            }
            match self.fill(MAX_HEAD).await {
                Ok(true) => {}
                Ok(false) if !received && !fresh => {
                    self.reusable = false;
                    return Err(Failure::Stale);
                }
                Ok(false) => {
                    self.reusable = false;
                    return Err(Failure::Class("reset"));
                }
                Err(Failure::Class("reset")) if !received && !fresh => {
                    self.reusable = false;
                    return Err(Failure::Stale);
                }
                Err(e) => {
                    self.reusable = false;
                    return Err(e);
                }
            }
        }
    }

    /// Consumes `n` body bytes.
    async fn skip(&mut self, mut n: u64) -> Result<(), Failure> {
        loop {
            let here = (self.end - self.start) as u64;
            let take = here.min(n);
            self.start += take as usize;
            n -= take;
            if n == 0 {
                return Ok(());
            }
            if self.buf.len() < BUF_BODY && n > self.buf.len() as u64 {
                self.buf.resize(BUF_BODY, 0);
            }
            if !self.fill(BUF_BODY).await? {
                self.reusable = false;
                return Err(Failure::Class("reset"));
            }
        }
    }

    /// Reads a chunked body, trailers included; its decoded length.
    async fn chunked(&mut self) -> Result<u64, Failure> {
        let mut total = 0u64;
        loop {
            let size = loop {
                match httparse::parse_chunk_size(&self.buf[self.start..self.end]) {
                    Ok(httparse::Status::Complete((len, size))) => {
                        self.start += len;
                        break size;
                    }
                    Ok(httparse::Status::Partial) => self.more().await?,
                    Err(_) => return Err(self.malformed()),
                }
            };
            if size == 0 {
                return self.trailers().await.map(|()| total);
            }
            self.skip(size).await?;
            total += size;
            // The CRLF that ends the chunk's data.
            while self.end - self.start < 2 {
                self.more().await?;
            }
            if &self.buf[self.start..self.start + 2] != b"\r\n" {
                return Err(self.malformed());
            }
            self.start += 2;
        }
    }

    /// Skips the trailer section that ends a chunked body.
    async fn trailers(&mut self) -> Result<(), Failure> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            match httparse::parse_headers(&self.buf[self.start..self.end], &mut headers) {
                Ok(httparse::Status::Complete((len, _))) => {
                    self.start += len;
                    return Ok(());
                }
                Ok(httparse::Status::Partial) => self.more().await?,
                Err(_) => return Err(self.malformed()),
            }
        }
    }

    /// Reads until the server closes; the bytes read.
    async fn until_close(&mut self) -> Result<u64, Failure> {
        let mut total = (self.end - self.start) as u64;
        self.start = self.end;
        loop {
            if self.buf.len() < BUF_BODY {
                self.buf.resize(BUF_BODY, 0);
            }
            if !self.fill(BUF_BODY).await? {
                return Ok(total);
            }
            total += (self.end - self.start) as u64;
            self.start = self.end;
        }
    }

    /// More of a message that the server must still send.
    async fn more(&mut self) -> Result<(), Failure> {
        if self.fill(MAX_HEAD).await? {
            Ok(())
        } else {
            self.reusable = false;
            Err(Failure::Class("reset"))
        }
    }

    fn malformed(&mut self) -> Failure {
        self.reusable = false;
        Failure::Class("bad_response")
    }
}

/// Parses a response head from `buf`: `Ok(None)` when incomplete, else its
/// length and what it says (`None` for an informational 1xx response, to
/// be skipped). Errors are the request's error class.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Option<Head>)>, &'static str> {
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut headers,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err("bad_response"),
    };
    let status = resp.code.unwrap_or(0);
    let http11 = resp.version == Some(1);
    if !(100..=999).contains(&status) {
        return Err("bad_response");
    }
    if (100..=199).contains(&status) && status != 101 {
        return Ok(Some((len, None)));
    }
    let mut length: Option<u64> = None;
    let mut chunked = None;
    let (mut close, mut keep) = (false, false);
    let mut cache = CacheMark::None;
    for h in resp.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            for v in h.value.split(|&b| b == b',') {
                let n = parse_length(v.trim_ascii()).ok_or("bad_response")?;
                if length.is_some_and(|l| l != n) {
                    return Err("bad_response");
                }
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked when it is the last coding named.
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("x-cache") {
            cache = CacheMark::from_header(std::str::from_utf8(h.value).ok());
        }
    }
    let framing = match (status, chunked, length) {
        (101 | 204 | 304, _, _) => Framing::Length(0),
        (_, Some(_), _) if !http11 => return Err("bad_response"),
        (_, Some(true), _) => Framing::Chunked,
        (_, Some(false), _) => Framing::Close,
        (_, None, Some(n)) => Framing::Length(n),
        (_, None, None) => Framing::Close,
    };
    let keep_alive = status != 101 && !close && (http11 || keep);
    Ok(Some((
        len,
        Some(Head {
            status,
            framing,
            keep_alive,
            cache,
        }),
    )))
}

/// A `Content-Length` value: digits only.
fn parse_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn head(text: &str) -> Head {
        match parse_head(text.as_bytes()) {
            Ok(Some((len, Some(h)))) => {
                assert_eq!(len, text.len());
                h
            }
            other => panic!("not a final head: {:?}", other.map(|o| o.map(|(l, _)| l))),
        }
    }

    #[test]
    fn heads_frame_their_bodies_as_hyper_does() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-Cache: HIT\r\n\r\n");
        assert_eq!(
            (h.status, h.framing, h.keep_alive),
            (200, Framing::Length(12), true)
        );
        assert_eq!(h.cache, CacheMark::Hit);
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(h.framing, Framing::Chunked);
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(h.framing, Framing::Close);
        let h = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(h.framing, Framing::Close);
        let h = head("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n");
        assert_eq!(h.framing, Framing::Length(0));
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nConnection: Close\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Length(5), false));
        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n");
        assert!(!h.keep_alive);
        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n");
        assert!(h.keep_alive);
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 099 Odd\r\n\r\n",
            "NOT HTTP\r\n\r\n",
        ] {
            assert_eq!(
                parse_head(bad.as_bytes()).err(),
                Some("bad_response"),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_head(b"HTTP/1.1 100 Continue\r\n\r\n"),
            Ok(Some((25, None)))
        ));
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Le"),
            Ok(None)
        ));
    }

    /// A server that answers each request (read up to its blank line) with
    /// the next of `answers`, written in pieces of `piece` bytes, then
    /// closes; the client's connection to it.
    async fn serve(answers: Vec<&'static str>, piece: usize) -> H1Conn {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            for answer in answers {
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    let mut b = [0u8; 512];
                    let n = s.read(&mut b).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&b[..n]);
                }
                seen.clear();
                for part in answer.as_bytes().chunks(piece) {
                    s.write_all(part).await.unwrap();
                    s.flush().await.unwrap();
                    tokio::task::yield_now().await;
                }
            }
        });
        H1Conn::new(TcpStream::connect(addr).await.unwrap())
    }

    async fn get(c: &mut H1Conn) -> Result<(u16, u64, CacheMark), Failure> {
        let mut req = Vec::new();
        write_head(&mut req, "/x", b"h:1", b"t", false);
        let mut headed = false;
        let a = c.exchange(&req, || headed = true).await?;
        assert!(headed);
        Ok((a.status, a.bytes, a.cache))
    }

    #[tokio::test]
    async fn bodies_of_every_framing_are_read_whole_in_any_pieces() {
        for piece in [1, 7, 4096] {
            let mut c = serve(
                vec![
                    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Cache: MISS\r\n\r\n3;x=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n",
                    "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
                    "HTTP/1.1 200 OK\r\n\r\nuntil the close",
                ],
                piece,
            )
            .await;
            assert_eq!(get(&mut c).await, Ok((200, 5, CacheMark::None)));
            assert!(c.reusable());
            assert_eq!(get(&mut c).await, Ok((200, 19, CacheMark::Miss)));
            assert_eq!(get(&mut c).await, Ok((204, 0, CacheMark::None)));
            assert_eq!(get(&mut c).await, Ok((200, 15, CacheMark::None)));
            assert!(
                !c.reusable(),
                "a body ended by the close ends the connection"
            );
        }
    }

    #[tokio::test]
    async fn a_closed_idle_connection_is_stale_a_fresh_one_is_reset() {
        let mut c = serve(vec!["HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], 4096).await;
        assert_eq!(get(&mut c).await, Ok((200, 0, CacheMark::None)));
        assert_eq!(get(&mut c).await, Err(Failure::Stale));
        let mut c = serve(vec![], 4096).await;
        assert_eq!(get(&mut c).await, Err(Failure::Class("reset")));
        let mut c = serve(
            vec!["HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"],
            4096,
        )
        .await;
        assert_eq!(get(&mut c).await, Err(Failure::Class("reset")));
        let mut c = serve(
            vec!["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
            4096,
        )
        .await;
        assert_eq!(get(&mut c).await, Err(Failure::Class("bad_response")));
    }
}
