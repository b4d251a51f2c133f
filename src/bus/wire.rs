//! The frames nodes exchange over Redis pub/sub: one `PUBLISH` per event, whatever the
//! number of watchers. A fixed binary header carries the sender, the send time (for the
//! bus-lag metric) and the target; the event bytes follow untouched, so no node re-encodes
//! JSON it only forwards.
//!
//! ```text
//! version(1)=1 | kind(1) | node_len(1) node | sent_at_micros(i64 BE) | body
//! body, kind 0 (event):    target_kind(1) | target_len(u16 BE) target | event JSON
//!                          (target_kind 3: target = user `\n` cid `\n` cid …)
//! body, kind 1 (conns):    user_len(u16) user | count(u32)
//! body, kind 2 (watching): cid_len(u16) cid | user_len(u16) user | count(u32)
//! body, kind 3 (heartbeat), kind 4 (hello: "send me your state"): empty
//! body, kind 5 (control):  id(u64 BE) | control (below)
//! body, kind 6 (ack):      id(u64 BE) | to_len(1) to
//! control: 0 revoke   | scope(1) | [str16 user or sid] | [before_secs(i64 BE)]
//!          1 evict keys | has_subject(1) | [str16 subject]
//!          2 forget pseudonyms
//! body, kind 9 (forget read decisions): cid_len(u16) cid | user_len(u16) user (empty: all)
//! ```
//!
//! Control frames (revocations, cache evictions) are acknowledged by every node that applied
//! them, so the sender can wait until the whole cluster has acted.

use super::gate::Scope;
use super::local::LocalChange;

const VERSION: u8 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Channel = 0,
    User = 1,
    Presence = 2,
    /// A user's presence, for the watchers of the channels they are a member of: the key is
    /// the user id then each channel id, separated by `\n` ([`super::presence_key`]).
    Members = 3,
}

/// Whose WebSockets a revocation closes (each node closes those it holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// Every connection of the user (deleted, deactivated, deprovisioned, erased).
    User { user_id: String },
    /// The user's connections opened with a token issued before `before` (Unix seconds;
    /// a token without `iat` counts as issued before).
    UserTokensBefore { user_id: String, before: i64 },
    /// Every connection opened with a token issued before `before` (app-wide).
    AllTokensBefore { before: i64 },
    /// The connections opened with a chat token of this session (its row key).
    Session { sid: String },
    /// The connections opened with a chat token of any session of the user.
    SessionsOf { user_id: String },
}

/// A cluster-wide instruction every node applies and acknowledges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Revoke(Revocation),
    /// Drop cached keys: of one subject (shredded or rotated), or all of them, the cached
    /// KEK included (`None`: the KEK was rotated).
    EvictKeys {
        subject: Option<String>,
    },
    /// Drop every cached pseudonym (some were unlinked).
    ForgetPseudonyms,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Event {
        target: TargetKind,
        key: String,
        payload: Vec<u8>,
    },
    State(LocalChange),
    Heartbeat,
    Hello,
    Control {
        id: u64,
        control: Control,
    },
    /// `node` applied control frame `id` sent by `to`.
    Ack {
        id: u64,
        to: String,
    },
    /// Cached read decisions to forget (`bus::gate`).
    Invalidate(Scope),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub node: String,
    pub sent_at: i64,
    pub body: Body,
}

fn put_str16(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

pub fn encode(node: &str, sent_at: i64, body: &Body) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(VERSION);
    out.push(match body {
        Body::Event { .. } => 0,
        Body::State(LocalChange::Connections { .. }) => 1,
        Body::State(LocalChange::Watching { .. }) => 2,
        Body::Heartbeat => 3,
        Body::Hello => 4,
        Body::Control { .. } => 5,
        Body::Ack { .. } => 6,
        Body::Invalidate(_) => 9,
    });
    let node = &node.as_bytes()[..node.len().min(255)];
    out.push(node.len() as u8);
    out.extend_from_slice(node);
    out.extend_from_slice(&sent_at.to_be_bytes());
    match body {
        Body::Event {
            target,
            key,
            payload,
        } => {
            out.push(*target as u8);
            put_str16(&mut out, key);
            out.extend_from_slice(payload);
        }
        Body::State(LocalChange::Connections { user_id, count }) => {
            put_str16(&mut out, user_id);
            out.extend_from_slice(&(*count as u32).to_be_bytes());
        }
        Body::State(LocalChange::Watching {
            cid,
            user_id,
            count,
        }) => {
            put_str16(&mut out, cid);
            put_str16(&mut out, user_id);
            out.extend_from_slice(&(*count as u32).to_be_bytes());
        }
        Body::Invalidate(scope) => {
            put_str16(&mut out, scope.cid.as_deref().unwrap_or(""));
            put_str16(&mut out, scope.user_id.as_deref().unwrap_or(""));
        }
        Body::Heartbeat | Body::Hello => {}
        Body::Control { id, control } => {
            out.extend_from_slice(&id.to_be_bytes());
            encode_control(&mut out, control);
        }
        Body::Ack { id, to } => {
            out.extend_from_slice(&id.to_be_bytes());
            let to = &to.as_bytes()[..to.len().min(255)];
            out.push(to.len() as u8);
            out.extend_from_slice(to);
        }
    }
    out
}

fn encode_control(out: &mut Vec<u8>, control: &Control) {
    match control {
        Control::Revoke(r) => {
            out.push(0);
            match r {
                Revocation::User { user_id } => {
                    out.push(0);
                    put_str16(out, user_id);
                }
                Revocation::UserTokensBefore { user_id, before } => {
                    out.push(1);
                    put_str16(out, user_id);
                    out.extend_from_slice(&before.to_be_bytes());
                }
                Revocation::AllTokensBefore { before } => {
                    out.push(2);
                    out.extend_from_slice(&before.to_be_bytes());
                }
                Revocation::Session { sid } => {
                    out.push(3);
                    put_str16(out, sid);
                }
                Revocation::SessionsOf { user_id } => {
                    out.push(4);
                    put_str16(out, user_id);
                }
            }
        }
        Control::EvictKeys { subject } => {
            out.push(1);
            match subject {
                Some(s) => {
                    out.push(1);
                    put_str16(out, s);
                }
                None => out.push(0),
            }
        }
        Control::ForgetPseudonyms => out.push(2),
    }
}

fn decode_control(r: &mut Reader<'_>) -> Option<Control> {
    Some(match r.u8()? {
        0 => Control::Revoke(match r.u8()? {
            0 => Revocation::User {
                user_id: r.str16()?,
            },
            1 => Revocation::UserTokensBefore {
                user_id: r.str16()?,
                before: r.i64()?,
            },
            2 => Revocation::AllTokensBefore { before: r.i64()? },
            3 => Revocation::Session { sid: r.str16()? },
            4 => Revocation::SessionsOf {
                user_id: r.str16()?,
            },
            _ => return None,
        }),
        1 => Control::EvictKeys {
            subject: match r.u8()? {
                0 => None,
                1 => Some(r.str16()?),
                _ => return None,
            },
        },
        2 => Control::ForgetPseudonyms,
        _ => return None,
    })
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn str_n(&mut self, n: usize) -> Option<String> {
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn str16(&mut self) -> Option<String> {
        let n = u16::from_be_bytes(self.take(2)?.try_into().ok()?) as usize;
        self.str_n(n)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// Decodes a frame; `None` for anything malformed or of another version (ignored).
pub fn decode(buf: &[u8]) -> Option<Frame> {
    let mut r = Reader { buf };
    if r.u8()? != VERSION {
        return None;
    }
    let kind = r.u8()?;
    let node_len = r.u8()? as usize;
    let node = r.str_n(node_len)?;
    let sent_at = r.i64()?;
    let body = match kind {
        0 => {
            let target = match r.u8()? {
                0 => TargetKind::Channel,
                1 => TargetKind::User,
                2 => TargetKind::Presence,
                3 => TargetKind::Members,
                _ => return None,
            };
            let key = r.str16()?;
            Body::Event {
                target,
                key,
                payload: r.buf.to_vec(),
            }
        }
        1 => Body::State(LocalChange::Connections {
            user_id: r.str16()?,
            count: r.u32()? as usize,
        }),
        2 => Body::State(LocalChange::Watching {
            cid: r.str16()?,
            user_id: r.str16()?,
            count: r.u32()? as usize,
        }),
        3 => Body::Heartbeat,
        4 => Body::Hello,
        5 => {
            let id = r.u64()?;
            let control = decode_control(&mut r)?;
            if !r.buf.is_empty() {
                return None;
            }
            Body::Control { id, control }
        }
        6 => {
            let id = r.u64()?;
            let n = r.u8()? as usize;
            Body::Ack {
                id,
                to: r.str_n(n)?,
            }
        }
        9 => {
            let some = |s: String| (!s.is_empty()).then_some(s);
            Body::Invalidate(Scope {
                cid: some(r.str16()?),
                user_id: some(r.str16()?),
            })
        }
        _ => return None,
    };
    Some(Frame {
        node,
        sent_at,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        let bodies = [
            Body::Event {
                target: TargetKind::Channel,
                key: "messaging:x".into(),
                payload: br#"{"type":"message.new"}"#.to_vec(),
            },
            Body::Event {
                target: TargetKind::Members,
                key: "u\nmessaging:x\nteam:y".into(),
                payload: br#"{"type":"user.presence.changed"}"#.to_vec(),
            },
            Body::State(LocalChange::Connections {
                user_id: "u".into(),
                count: 3,
            }),
            Body::State(LocalChange::Watching {
                cid: "m:x".into(),
                user_id: "u".into(),
                count: 1,
            }),
            Body::Heartbeat,
            Body::Hello,
            Body::Ack {
                id: 7,
                to: "node-2".into(),
            },
            Body::Invalidate(Scope {
                cid: Some("phi:x".into()),
                user_id: None,
            }),
            Body::Invalidate(Scope {
                cid: None,
                user_id: Some("u".into()),
            }),
        ];
        let controls = [
            Control::Revoke(Revocation::User {
                user_id: "u".into(),
            }),
            Control::Revoke(Revocation::UserTokensBefore {
                user_id: "u".into(),
                before: 1_800_000_000,
            }),
            Control::Revoke(Revocation::AllTokensBefore { before: -1 }),
            Control::Revoke(Revocation::Session { sid: "abc".into() }),
            Control::Revoke(Revocation::SessionsOf {
                user_id: "u".into(),
            }),
            Control::EvictKeys {
                subject: Some("user:u".into()),
            },
            Control::EvictKeys { subject: None },
            Control::ForgetPseudonyms,
        ];
        let bodies = bodies.into_iter().chain(
            controls
                .into_iter()
                .map(|control| Body::Control { id: 9, control }),
        );
        for body in bodies {
            let frame = decode(&encode("node-1", 42, &body)).unwrap();
            assert_eq!(
                frame,
                Frame {
                    node: "node-1".into(),
                    sent_at: 42,
                    body
                }
            );
        }
    }

    #[test]
    fn garbage_and_truncation_are_ignored() {
        assert_eq!(decode(b""), None);
        assert_eq!(decode(b"\x02\x00"), None);
        let full = encode(
            "n",
            1,
            &Body::State(LocalChange::Connections {
                user_id: "user".into(),
                count: 1,
            }),
        );
        assert_eq!(decode(&full[..full.len() - 1]), None);
        let control = encode(
            "n",
            1,
            &Body::Control {
                id: 1,
                control: Control::Revoke(Revocation::UserTokensBefore {
                    user_id: "u".into(),
                    before: 5,
                }),
            },
        );
        assert_eq!(decode(&control[..control.len() - 1]), None);
        let mut unknown = control.clone();
        unknown[1 + 1 + 1 + 1 + 8 + 8] = 9;
        assert_eq!(decode(&unknown), None, "an unknown control kind is ignored");
    }
}
