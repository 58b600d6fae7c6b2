//! `cairn serve`: a small static file server for the demo and for trying an index
//! locally. Binds 127.0.0.1 only; GET and HEAD only; never leaves its directory.

use crate::error::{Error, Result};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Content type by file extension.
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Maps a URL path to a file under `root`: `/a/b` tries `a/b`, `a/b.html`, `a/b/index.html`.
/// Returns None for paths that would leave `root` or name nothing.
pub fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let path = url_path.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path)?;
    let mut rel = PathBuf::new();
    for c in Path::new(decoded.trim_start_matches('/')).components() {
        match c {
            Component::Normal(p) => rel.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    let base = root.join(&rel);
    [base.clone(), base.with_extension("html"), base.join("index.html")].into_iter().find(|p| p.is_file())
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A listening socket on 127.0.0.1:`port` with TCP_NODELAY, which the
/// accepted connections inherit. tiny_http writes a response's headers and a
/// body over 1 KB in two sends; with Nagle's algorithm the body then waits for
/// the browser's delayed ACK of the headers, about 40 ms per file.
fn listen(port: u16) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nodelay(true)?;
    socket.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

/// Serves `root` on 127.0.0.1:`port` (0 picks a free port) until the process ends.
/// `on_ready` receives the URL once the socket is bound.
pub fn serve(root: &Path, port: u16, on_ready: impl FnOnce(&str)) -> Result<()> {
    if !root.is_dir() {
        return Err(Error::io(root, std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory")));
    }
    let listener = listen(port).map_err(|e| Error::External(format!("cannot listen on 127.0.0.1:{port}: {e}")))?;
    let server = tiny_http::Server::from_listener(listener, None).map_err(|e| Error::External(format!("cannot serve on 127.0.0.1:{port}: {e}")))?;
    let port = server.server_addr().to_ip().map(|a| a.port()).unwrap_or(port);
    on_ready(&format!("http://127.0.0.1:{port}/"));
    let server = Arc::new(server);
    let root = Arc::new(root.to_path_buf());
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (server, root) = (server.clone(), root.clone());
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    respond(&root, request);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

fn respond(root: &Path, request: tiny_http::Request) {
    use tiny_http::{Method, Response};
    let ok_method = matches!(request.method(), Method::Get | Method::Head);
    let file = if ok_method { resolve(root, request.url()) } else { None };
    let result = match file.and_then(|p| std::fs::read(&p).ok().map(|b| (p, b))) {
        Some((path, bytes)) => {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            // Content-addressed index files never change; everything else is revalidated.
            let cache = if name.contains('-') && (name.ends_with(".bin") || name.ends_with(".json")) && name != "manifest.json" {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            let response = Response::from_data(bytes)
                .with_header(header("Content-Type", content_type(&path)))
                .with_header(header("Cache-Control", cache))
                .with_header(header("X-Content-Type-Options", "nosniff"));
            request.respond(response)
        }
        None if !ok_method => request.respond(Response::from_string("method not allowed").with_status_code(405)),
        None => request.respond(
            Response::from_string("not found").with_status_code(404).with_header(header("Content-Type", "text/plain; charset=utf-8")),
        ),
    };
    let _ = result; // a client that went away is not our error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_stays_inside_root_and_finds_pages() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("questions/7")).unwrap();
        std::fs::write(dir.path().join("questions/7/index.html"), "x").unwrap();
        std::fs::write(dir.path().join("index.html"), "x").unwrap();
        assert_eq!(resolve(dir.path(), "/questions/7"), Some(dir.path().join("questions/7/index.html")));
        assert_eq!(resolve(dir.path(), "/"), Some(dir.path().join("index.html")));
        assert_eq!(resolve(dir.path(), "/../etc/passwd"), None);
        assert_eq!(resolve(dir.path(), "/%2e%2e/etc/passwd"), None);
        assert_eq!(resolve(dir.path(), "/nope"), None);
    }
}
