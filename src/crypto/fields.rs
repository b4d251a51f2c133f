//! Sealing and opening stored fields, and the blind index for search.
//!
//! Text columns hold `ward:v1:<base64 frame>`; JSON columns hold `{"_enc": "ward:v1:…"}` so the
//! column stays valid JSON. A value without the prefix is legacy plaintext and reads as is
//! (it is sealed the next time it is written). A value whose key was destroyed reads as a
//! [`Opened::Shredded`] tombstone.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::frame::{self, Field};
use super::keyring::Keyring;

const PREFIX: &str = "ward:v1:";
const ENC_KEY: &str = "_enc";
/// The subject whose key (separate from every DEK) keys the search index.
const INDEX_SUBJECT: &str = "system:search-index";
/// Blind-index tokens are HMAC-SHA-256 truncated to 128 bits.
const TOKEN_BYTES: usize = 16;
const MAX_TOKENS_PER_MESSAGE: usize = 512;

pub enum Opened<T> {
    Plain(T),
    /// The subject's key was destroyed: the value is gone for good.
    Shredded,
}

pub struct FieldCrypto {
    pub keyring: Arc<Keyring>,
}

impl FieldCrypto {
    pub fn new(keyring: Arc<Keyring>) -> Self {
        Self { keyring }
    }

    pub async fn seal_text(
        &self,
        subject: &str,
        field: Field<'_>,
        text: &str,
    ) -> anyhow::Result<String> {
        let dek = self.keyring.dek_for_write(subject).await?;
        Ok(format!(
            "{PREFIX}{}",
            STANDARD_NO_PAD.encode(frame::seal(&dek, field, text.as_bytes()))
        ))
    }

    pub async fn open_text(
        &self,
        field: Field<'_>,
        stored: &str,
    ) -> anyhow::Result<Opened<String>> {
        let Some(b64) = stored.strip_prefix(PREFIX) else {
            return Ok(Opened::Plain(stored.to_string()));
        };
        let bytes = STANDARD_NO_PAD
            .decode(b64)
            .map_err(|_| anyhow::anyhow!("a sealed value is not base64"))?;
        let key_id = frame::key_id(&bytes)?;
        let Some(dek) = self.keyring.dek(&key_id).await? else {
            return Ok(Opened::Shredded);
        };
        let plain = frame::open(&dek, field, &bytes)?;
        Ok(Opened::Plain(String::from_utf8(plain.to_vec()).map_err(
            |_| anyhow::anyhow!("a sealed text is not UTF-8"),
        )?))
    }

    pub async fn seal_fields(
        &self,
        subject: &str,
        field: Field<'_>,
        fields: &Map<String, Value>,
    ) -> anyhow::Result<Map<String, Value>> {
        if fields.is_empty() {
            return Ok(Map::new());
        }
        let sealed = self
            .seal_text(subject, field, &Value::Object(fields.clone()).to_string())
            .await?;
        Ok(Map::from_iter([(
            ENC_KEY.to_string(),
            Value::String(sealed),
        )]))
    }

    pub async fn open_fields(
        &self,
        field: Field<'_>,
        stored: &Map<String, Value>,
    ) -> anyhow::Result<Opened<Map<String, Value>>> {
        let Some(Value::String(sealed)) = stored.get(ENC_KEY) else {
            return Ok(Opened::Plain(stored.clone()));
        };
        Ok(match self.open_text(field, sealed).await? {
            Opened::Shredded => Opened::Shredded,
            Opened::Plain(json) => match serde_json::from_str(&json)? {
                Value::Object(map) => Opened::Plain(map),
                _ => anyhow::bail!("a sealed field set is not a JSON object"),
            },
        })
    }

    /// Blind-index tokens for `text` in channel `cid`: keyed HMACs of each distinct
    /// normalised word, bound to the channel so equal words in two channels do not link,
    /// and of each word's prefixes (for `$autocomplete`, see [`prefixes`]).
    pub async fn tokens(&self, cid: &str, text: &str) -> anyhow::Result<Vec<String>> {
        let words = words(text);
        let mut tokens = self.tokens_for_words(cid, &words).await?;
        tokens.extend(self.tokens_for_prefixes(cid, &prefixes(&words)).await?);
        Ok(tokens)
    }

    /// Blind-index tokens of word prefixes: a separate domain (a `0x01` byte after the
    /// channel's separator, which no word can start with), so a prefix token never equals
    /// the token of the whole word it spells.
    pub async fn tokens_for_prefixes(
        &self,
        cid: &str,
        prefixes: &BTreeSet<String>,
    ) -> anyhow::Result<Vec<String>> {
        if prefixes.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.keyring.dek_for_write(INDEX_SUBJECT).await?;
        Ok(prefixes
            .iter()
            .take(MAX_PREFIX_TOKENS_PER_MESSAGE)
            .map(|p| {
                let mut mac =
                    <Hmac<Sha256> as Mac>::new_from_slice(key.secret()).expect("any key length");
                mac.update(cid.as_bytes());
                mac.update(&[0, 1]);
                mac.update(p.as_bytes());
                let out = mac.finalize().into_bytes();
                hex::encode(&out[..TOKEN_BYTES])
            })
            .collect())
    }

    pub async fn tokens_for_words(
        &self,
        cid: &str,
        words: &BTreeSet<String>,
    ) -> anyhow::Result<Vec<String>> {
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.keyring.dek_for_write(INDEX_SUBJECT).await?;
        Ok(words
            .iter()
            .take(MAX_TOKENS_PER_MESSAGE)
            .map(|w| {
                let mut mac =
                    <Hmac<Sha256> as Mac>::new_from_slice(key.secret()).expect("any key length");
                mac.update(cid.as_bytes());
                mac.update(&[0]);
                mac.update(w.as_bytes());
                let out = mac.finalize().into_bytes();
                hex::encode(&out[..TOKEN_BYTES])
            })
            .collect())
    }
}

/// The shortest word prefix the index keeps (an `$autocomplete` of fewer characters
/// finds nothing).
pub const MIN_PREFIX_CHARS: usize = 3;
/// The longest word prefix the index keeps; a longer `$autocomplete` word is looked up by
/// its first `MAX_PREFIX_CHARS` characters.
pub const MAX_PREFIX_CHARS: usize = 16;
const MAX_PREFIX_TOKENS_PER_MESSAGE: usize = 4096;

/// The prefixes of `words` that the index keeps: every prefix of `MIN_PREFIX_CHARS` to
/// `MAX_PREFIX_CHARS` characters (a whole word of that length included).
pub fn prefixes(words: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for w in words {
        let chars: Vec<char> = w.chars().collect();
        for n in MIN_PREFIX_CHARS..=chars.len().min(MAX_PREFIX_CHARS) {
            out.insert(chars[..n].iter().collect());
        }
    }
    out
}

/// The prefix an `$autocomplete` word is looked up by, or `None` when it is too short.
pub fn lookup_prefix(word: &str) -> Option<String> {
    let chars: Vec<char> = word.chars().collect();
    (chars.len() >= MIN_PREFIX_CHARS).then(|| chars.iter().take(MAX_PREFIX_CHARS).collect())
}

/// The distinct lower-case words (letters and digits) of a text.
pub fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && w.chars().count() <= 64)
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_normalised_and_distinct() {
        let w = words("Insulin: 10 units, INSULIN again! café");
        assert_eq!(
            w.into_iter().collect::<Vec<_>>(),
            ["10", "again", "café", "insulin", "units"]
        );
    }

    #[test]
    fn prefixes_run_from_three_to_sixteen_characters() {
        let p = prefixes(&words("Warfarin ab"));
        assert_eq!(
            p.into_iter().collect::<Vec<_>>(),
            ["war", "warf", "warfa", "warfar", "warfari", "warfarin"]
        );
        assert_eq!(lookup_prefix("wa"), None);
        assert_eq!(
            lookup_prefix("abcdefghijklmnopqrstu").as_deref(),
            Some("abcdefghijklmnop")
        );
    }
}
