//! A browser without a browser, for the dashboard's handler tests: plain
//! HTTP/1.1 over TCP that keeps cookies, shows every header, and follows
//! nothing by itself (each redirect is the test's to check).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Lower-case names; repeated headers (Set-Cookie) each kept.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key == "set-cookie")
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

/// A cookie jar and the requests that use it.
#[derive(Debug, Default, Clone)]
pub struct Web {
    pub cookies: BTreeMap<String, String>,
}

impl Web {
    pub fn new() -> Self {
        Self::default()
    }

    pub async fn get(&mut self, address: SocketAddr, path: &str) -> Answer {
        self.request(address, "GET", path, &[], b"").await
    }

    /// A form POST (`application/x-www-form-urlencoded`).
    pub async fn post_form(
        &mut self,
        address: SocketAddr,
        path: &str,
        fields: &[(&str, &str)],
    ) -> Answer {
        let body = serde_urlencoded::to_string(fields).unwrap();
        self.request(
            address,
            "POST",
            path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
        .await
    }

    /// Follows an absolute `http://host:port/path` URL (a redirect).
    pub async fn get_url(&mut self, url: &str) -> Answer {
        let rest = url.strip_prefix("http://").expect("an http:// URL");
        let (host, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_owned()), |(host, path)| {
                (host, format!("/{path}"))
            });
        self.get(host.parse().expect("host:port"), &path).await
    }

    pub async fn request(
        &mut self,
        address: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connects");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !self.cookies.is_empty() {
            let cookies: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            request.push_str(&format!("Cookie: {}\r\n", cookies.join("; ")));
        }
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
            .await
            .unwrap_or_else(|_| panic!("{method} {path}: no answer in 10 s"))
            .unwrap();
        let answer = parse(&String::from_utf8_lossy(&response));
        self.keep_cookies(&answer);
        answer
    }

    fn keep_cookies(&mut self, answer: &Answer) {
        for cookie in answer.set_cookies() {
            let pair = cookie.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let removed = value.is_empty() || cookie.contains("Max-Age=0");
            match removed {
                true => self.cookies.remove(name.trim()),
                false => self
                    .cookies
                    .insert(name.trim().to_owned(), value.trim().to_owned()),
            };
        }
    }
}

fn parse(response: &str) -> Answer {
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((response, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.get(9..12))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A hidden field's value in a page (the first of that name).
pub fn hidden_field(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')? + start;
    Some(page[start..end].to_owned())
}
