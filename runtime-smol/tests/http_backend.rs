//! `HttpBackend` against a minimal HTTP server on loopback: the request line, the
//! `x-api-key` header and the PATCH body go out as CONTRACT.md §3 says, and the answers
//! come back through the shared mapping.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use runtime_smol::HttpBackend;
use sip_core::{BackendOp, BackendReply, RegisterStatus, Secret, StatusReport};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

/// One request as the server read it: request line, lower-cased headers, body.
#[derive(Debug)]
struct Seen {
    line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Serves `answers` (status line and body), one per connection, recording requests.
fn server(answers: Vec<(&'static str, &'static str)>) -> (String, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (status, body) in answers {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (n, v) = h.split_once(':').unwrap();
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
            let len = headers
                .iter()
                .find(|(n, _)| n == "content-length")
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut req_body = vec![0; len];
            reader.read_exact(&mut req_body).unwrap();
            tx.send(Seen {
                line: line.trim_end().to_owned(),
                headers,
                body: req_body,
            })
            .unwrap();
            let mut stream = reader.into_inner();
            write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
    });
    (url, rx)
}

fn header<'a>(seen: &'a Seen, name: &str) -> Option<&'a str> {
    seen.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn fetch_and_report_follow_the_contract() {
    let (url, seen) = server(vec![
        (
            "200 OK",
            r#"[{"id":"p1","host":"127.0.0.1","username":"alice","password":"pw","port":5090}]"#,
        ),
        ("204 No Content", ""),
        ("401 Unauthorized", r#"{"error":"bad key"}"#),
    ]);
    let backend = HttpBackend::new(&url, Secret::new("key-123"), Duration::from_secs(30)).unwrap();

    let reply = smol::block_on(backend.perform(&BackendOp::FetchProviders));
    let BackendReply::Providers(list) = reply else {
        panic!("expected providers, got {reply:?}");
    };
    assert_eq!(list.len(), 1);
    assert_eq!((list[0].id.as_str(), list[0].port), ("p1", Some(5090)));
    let get = seen.recv().unwrap();
    assert_eq!(get.line, "GET /api/sip/provider-registration HTTP/1.1");
    assert_eq!(header(&get, "x-api-key"), Some("key-123"));

    let op = BackendOp::ReportStatus {
        provider_id: "p 1".into(),
        report: StatusReport {
            register_status: RegisterStatus::Failed,
            register_error: Some("authentication rejected".into()),
            last_register_at: None,
        },
    };
    assert_eq!(
        smol::block_on(backend.perform(&op)),
        BackendReply::Delivered
    );
    let patch = seen.recv().unwrap();
    assert_eq!(
        patch.line,
        "PATCH /api/sip/provider-registration/p%201 HTTP/1.1"
    );
    assert_eq!(header(&patch, "x-api-key"), Some("key-123"));
    assert_eq!(header(&patch, "content-type"), Some("application/json"));
    assert_eq!(
        String::from_utf8(patch.body).unwrap(),
        r#"{"registerStatus":"failed","registerError":"authentication rejected","lastRegisterAt":null}"#
    );

    assert_eq!(
        smol::block_on(backend.perform(&op)),
        BackendReply::Unauthorized { status: 401 }
    );
}
