//! Buffering a request or response body once, up to a cap, and handing it on unchanged.

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, StreamExt};
use http_body::{Body as _, Frame};
use http_body_util::{BodyExt, StreamBody};

/// A body read for capture, and the body to hand on in its place.
pub(crate) struct Captured {
    /// The body to pass on: the same bytes (and trailers) as the original.
    pub body: Body,
    /// The whole body, when it was read to the end within the cap.
    pub bytes: Option<Bytes>,
    /// Why it was not captured, when it was not.
    pub skipped: Option<Skip>,
}

/// Why a body was not captured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Skip {
    /// Larger than the cap: it was streamed on without being buffered whole.
    TooLarge,
    /// The body failed mid-stream; the error is handed on to the reader.
    BodyError,
}

impl Skip {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Skip::TooLarge => "too_large",
            Skip::BodyError => "body_error",
        }
    }
}

/// Reads `body` whole if it fits in `cap` bytes. Past the cap (known up front from
/// `size_hint`, or found while reading) it stops buffering and returns a body that replays what
/// was read, then streams the rest: the receiver of the body always gets it byte for byte.
pub(crate) async fn capture(body: Body, cap: usize) -> Captured {
    if body.size_hint().lower() > cap as u64 {
        return Captured {
            body,
            bytes: None,
            skipped: Some(Skip::TooLarge),
        };
    }
    let mut body = body;
    let mut frames: Vec<Frame<Bytes>> = Vec::new();
    let mut size = 0usize;
    let mut has_trailers = false;
    loop {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    size += data.len();
                } else {
                    has_trailers = true;
                }
                frames.push(frame);
                if size > cap {
                    return Captured {
                        body: replay(frames, Some(body)),
                        bytes: None,
                        skipped: Some(Skip::TooLarge),
                    };
                }
            }
            Some(Err(e)) => {
                let replayed = stream::iter(frames.into_iter().map(Ok))
                    .chain(stream::once(async move { Err(e) }));
                return Captured {
                    body: Body::new(StreamBody::new(replayed)),
                    bytes: None,
                    skipped: Some(Skip::BodyError),
                };
            }
        }
    }
    let bytes = concat(&frames, size);
    let body = if has_trailers {
        replay(frames, None)
    } else {
        Body::from(bytes.clone())
    };
    Captured {
        body,
        bytes: Some(bytes),
        skipped: None,
    }
}

fn concat(frames: &[Frame<Bytes>], size: usize) -> Bytes {
    let mut data = frames.iter().filter_map(Frame::data_ref);
    match (data.next(), data.next()) {
        (None, _) => Bytes::new(),
        (Some(only), None) => only.clone(), // the common case: no copy
        (Some(first), Some(second)) => {
            let mut buf = BytesMut::with_capacity(size);
            buf.extend_from_slice(first);
            buf.extend_from_slice(second);
            for chunk in data {
                buf.extend_from_slice(chunk);
            }
            buf.freeze()
        }
    }
}

fn replay(frames: Vec<Frame<Bytes>>, rest: Option<Body>) -> Body {
    let head = stream::iter(frames.into_iter().map(Ok));
    match rest {
        None => Body::new(StreamBody::new(head)),
        Some(rest) => {
            let tail = http_body_util::BodyStream::new(rest);
            Body::new(StreamBody::new(head.chain(tail)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(parts: &[&'static [u8]]) -> Body {
        let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p))))
            .collect();
        Body::new(StreamBody::new(stream::iter(frames)))
    }

    async fn read_all(body: Body) -> Bytes {
        body.collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn a_body_within_the_cap_is_captured_and_handed_on_whole() {
        let c = capture(chunked(&[b"{\"a\":", b"1}"]), 64).await;
        assert_eq!(c.bytes.as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(read_all(c.body).await, &b"{\"a\":1}"[..]);
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_streamed_on_unchanged() {
        let c = capture(chunked(&[b"0123", b"4567", b"89"]), 5).await;
        assert!(c.bytes.is_none());
        assert_eq!(c.skipped, Some(Skip::TooLarge));
        assert_eq!(read_all(c.body).await, &b"0123456789"[..]);
    }

    #[tokio::test]
    async fn a_body_known_to_be_too_large_is_not_read() {
        let c = capture(Body::from(vec![b'x'; 100]), 10).await;
        assert_eq!(c.skipped, Some(Skip::TooLarge));
        assert_eq!(read_all(c.body).await.len(), 100);
    }

    #[tokio::test]
    async fn trailers_survive_capture() {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-checksum", http::HeaderValue::from_static("abc"));
        let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
            Ok(Frame::data(Bytes::from_static(b"{}"))),
            Ok(Frame::trailers(trailers)),
        ];
        let c = capture(Body::new(StreamBody::new(stream::iter(frames))), 64).await;
        assert_eq!(c.bytes.as_deref(), Some(&b"{}"[..]));
        let collected = c.body.collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-checksum"], "abc");
    }
}
