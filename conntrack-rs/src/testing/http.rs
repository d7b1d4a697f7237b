// SPDX-License-Identifier: MIT OR Apache-2.0
//! The exporter example as a child process, and one HTTP exchange with it:
//! what the exporter's kernel tests and its scrape-latency bench both need.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running exporter (listening on an ephemeral loopback port), killed when
/// dropped.
#[derive(Debug)]
pub struct ExporterProcess {
    child: Child,
    /// `127.0.0.1:PORT`, read from the exporter's first line.
    pub address: String,
}

/// One HTTP response, whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The status line and headers.
    pub head: String,
    /// The body.
    pub body: String,
    /// From connect to the last byte.
    pub took: Duration,
}

impl ExporterProcess {
    /// Starts `binary --listen 127.0.0.1:0 args...` and waits for its
    /// `listening on http://ADDR/metrics` line; its stderr goes to `stderr`.
    pub fn start(binary: &Path, args: &[&str], stderr: Stdio) -> io::Result<ExporterProcess> {
        let mut child = Command::new(binary)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()?;
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout).read_line(&mut line)?;
        let address = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .map(str::to_owned);
        match address {
            Some(address) => Ok(ExporterProcess { child, address }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(io::Error::other(format!("unexpected first line {line:?}")))
            }
        }
    }

    /// [`raw`] to this exporter.
    pub fn raw(&self, request: &str, timeout: Duration) -> Result<Response, String> {
        raw(&self.address, request, timeout)
    }

    /// [`get`] from this exporter.
    pub fn get(
        &self,
        path: &str,
        accept: Option<&str>,
        timeout: Duration,
    ) -> Result<Response, String> {
        get(&self.address, path, accept, timeout)
    }
}

impl Drop for ExporterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `request` as it is to `address` and reads the whole response (the
/// exporter closes each connection after one response), within `timeout`.
pub fn raw(address: &str, request: &str, timeout: Duration) -> Result<Response, String> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(address).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::with_capacity(64 * 1024);
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    let took = started.elapsed();
    let text = String::from_utf8(response).map_err(|_| "not UTF-8".to_owned())?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no head in {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok(Response {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
        took,
    })
}

/// `GET path` from `address`, with an `Accept` header if given.
pub fn get(
    address: &str,
    path: &str,
    accept: Option<&str>,
    timeout: Duration,
) -> Result<Response, String> {
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    raw(
        address,
        &format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n{accept}\r\n"),
        timeout,
    )
}
