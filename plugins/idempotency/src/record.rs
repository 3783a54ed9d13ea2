//! What is stored per key: the in-flight lock's value and the finished response.
//!
//! A stored response is one binary state value: a JSON head line (`fp`, `status`, `headers`),
//! a newline, then the body bytes as they are.

use serde::{Deserialize, Serialize};

/// The head of a stored response.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Head {
    /// The request fingerprint (method, path, query, body) the response belongs to.
    pub fp: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

/// A stored response.
#[derive(Debug, PartialEq, Eq)]
pub struct Stored {
    pub head: Head,
    pub body: Vec<u8>,
}

impl Stored {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(&self.head).unwrap_or_default();
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let split = bytes.iter().position(|&b| b == b'\n')?;
        let head = serde_json::from_slice(bytes.get(..split)?).ok()?;
        Some(Self {
            head,
            body: bytes.get(split + 1..)?.to_vec(),
        })
    }
}

/// The lock's value: the fingerprint and the request holding it (`fp request-id`).
pub fn lock_value(fp: &str, request_id: &str) -> Vec<u8> {
    format!("{fp} {request_id}").into_bytes()
}

/// The fingerprint part of a lock value.
pub fn lock_fp(value: &[u8]) -> &[u8] {
    value.split(|&b| b == b' ').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_binary_body() {
        let s = Stored {
            head: Head {
                fp: "ab".into(),
                status: 201,
                headers: vec![("content-type".into(), "application/json".into())],
            },
            body: vec![0, b'\n', 255],
        };
        assert_eq!(Stored::decode(&s.encode()), Some(s));
        assert_eq!(lock_fp(&lock_value("ab", "r1")), b"ab");
    }
}
