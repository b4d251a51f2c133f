//! What xmlsec may be asked to do with a received message: the algorithms it names and the
//! references and transforms it asks for, checked before xmlsec sees it.

use super::{
    ALLOWED_C14N, ALLOWED_ENCRYPTION, ALLOWED_OAEP_DIGESTS, ALLOWED_SIGNATURES, ALLOWED_TRANSFORMS,
    MAX_SIGNATURES, MAX_TRANSFORMS, Reject, reject, xml,
};

/// The elements that are children of `els[i]`.
fn children(els: &[xml::Element], i: usize) -> impl Iterator<Item = &xml::Element> {
    let depth = els[i].depth;
    els[i + 1..]
        .iter()
        .take_while(move |e| e.depth > depth)
        .filter(move |e| e.depth == depth + 1)
}

/// A same-document reference as SAML uses it (Core §5.4.2): the whole document (`""`) or
/// `#` and an ID (an NCName). No XPointer expressions, no external URIs (which xmlsec would
/// fetch).
fn local_reference(uri: &str) -> bool {
    uri.is_empty()
        || uri.strip_prefix('#').is_some_and(|id| {
            id.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && id
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        })
}

/// What xmlsec may be asked to do with a message, checked before it sees it: every
/// algorithm named anywhere is in an allow-list, and the work is bounded.
///
/// xmlsec runs a reference's transforms before it checks the signature value, so a
/// transform is work an unauthenticated sender chooses. samael 0.0.22 keeps xmlsec's
/// signature context private (no `xmlSecDSigCtxEnableReferenceTransform`), and `unsafe` is
/// forbidden here, so the allow-list is enforced on the message instead: every `Transform`
/// wherever it is (in a Reference, a RetrievalMethod, a CipherReference) names
/// enveloped-signature or a C14N algorithm, so XSLT, XPath, XPath Filter 2.0 and base64
/// never run. Also: at most [`MAX_SIGNATURES`] signatures, each with one SignedInfo holding
/// one Reference to this document with at most [`MAX_TRANSFORMS`] transforms; no
/// `Object`, `Manifest` or `RetrievalMethod` (never in SAML, each more references).
pub(super) fn check_algorithms(els: &[xml::Element]) -> Result<(), Reject> {
    let mut signatures = 0;
    let mut transforms = 0;
    for (i, e) in els.iter().enumerate() {
        let parent = e.parent.as_deref().unwrap_or_default();
        let alg = e.attr("Algorithm");
        let named = alg.unwrap_or_default();
        let allowed = match (e.local.as_str(), parent) {
            ("Transform", _) => {
                transforms += 1;
                if !ALLOWED_TRANSFORMS.contains(&named) {
                    return Err(reject("transform"));
                }
                true
            }
            ("CanonicalizationMethod", _) => {
                if !ALLOWED_C14N.contains(&named) {
                    return Err(reject("transform"));
                }
                true
            }
            ("RetrievalMethod" | "Manifest" | "XPath" | "XSLT", _) | ("Object", "Signature") => {
                return Err(reject("transform"));
            }
            ("Signature", _) => {
                signatures += 1;
                let signed_info: Vec<usize> = (i + 1..els.len())
                    .take_while(|&k| els[k].depth > e.depth)
                    .filter(|&k| els[k].depth == e.depth + 1 && els[k].local == "SignedInfo")
                    .collect();
                let [si] = signed_info.as_slice() else {
                    return Err(reject("malformed"));
                };
                let refs: Vec<usize> = (si + 1..els.len())
                    .take_while(|&k| els[k].depth > els[*si].depth)
                    .filter(|&k| els[k].depth == els[*si].depth + 1 && els[k].local == "Reference")
                    .collect();
                let [r] = refs.as_slice() else {
                    return Err(reject("references"));
                };
                if !els[*r].attr("URI").is_some_and(local_reference) {
                    return Err(reject("references"));
                }
                let count = children(els, *r)
                    .filter(|c| c.local == "Transforms")
                    .count();
                if count > 1 {
                    return Err(reject("references"));
                }
                true
            }
            ("SignatureMethod", "SignedInfo") => ALLOWED_SIGNATURES
                .iter()
                .any(|a| a.signature_uri() == named),
            ("DigestMethod", "Reference") => {
                ALLOWED_SIGNATURES.iter().any(|a| a.digest_uri() == named)
            }
            // The digest of RSA-OAEP's mask (XML Encryption §5.4.2), not a signature digest.
            ("DigestMethod", "EncryptionMethod") => ALLOWED_OAEP_DIGESTS.contains(&named),
            ("EncryptionMethod", "EncryptedData" | "EncryptedKey") => {
                ALLOWED_ENCRYPTION.contains(&named)
            }
            // Any other element naming an algorithm is one Ward has not vetted.
            _ => alg.is_none(),
        };
        if !allowed {
            return Err(reject("algorithm"));
        }
        if e.local == "Transforms" && children(els, i).count() > MAX_TRANSFORMS {
            return Err(reject("references"));
        }
    }
    if signatures > MAX_SIGNATURES || transforms > MAX_SIGNATURES * MAX_TRANSFORMS {
        return Err(reject("references"));
    }
    Ok(())
}
