//! Unit tests of the key set.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use serde_json::{Map, Value};

use super::files::thumbprint;
use super::*;

#[test]
fn rfc7638_example_thumbprint() {
    // The example key of RFC 7638 §3.1 and its published thumbprint.
    let jwk = Jwk::from_bytes(
        br#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
    )
    .unwrap();
    assert_eq!(
        thumbprint(&jwk).unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn generates_reuses_signs_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let a = KeySet::load_or_generate(dir.path()).unwrap();
    let b = KeySet::load_or_generate(dir.path()).unwrap();
    for alg in SigningAlgorithm::ALL {
        assert_eq!(
            a.active_kid(alg, 0),
            b.active_kid(alg, 0),
            "keys reused across restarts"
        );
    }
    for entry in fs::read_dir(dir.path()).unwrap() {
        let mode = entry.unwrap().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let jwks: Value = serde_json::from_slice(&a.jwks_json()).unwrap();
    let text = jwks.to_string();
    for private in ["\"d\"", "\"p\"", "\"q\"", "\"dp\""] {
        assert!(!text.contains(private), "JWKS leaks {private}");
    }
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 3);
    for alg in SigningAlgorithm::ALL {
        let mut claims = Map::new();
        claims.insert("sub".into(), "u1".into());
        let token = a.sign(alg, "JWT", claims, crate::now()).unwrap();
        let (claims, typ) = b.verify(&token).unwrap();
        assert_eq!(claims["sub"], "u1");
        assert_eq!(typ.as_deref(), Some("JWT"));
        // Tampered payload fails.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin"}"#);
        parts[1] = &forged;
        assert!(b.verify(&parts.join(".")).is_err());
    }
    // alg=none with a known kid is refused.
    let kid = a.active_kid(SigningAlgorithm::RS256, crate::now()).unwrap();
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{kid}"}}"#));
    let body = URL_SAFE_NO_PAD.encode(br#"{"sub":"u1"}"#);
    assert!(a.verify(&format!("{header}.{body}.")).is_err());
}

#[test]
fn rotate_reload_list_and_prune() {
    let dir = tempfile::tempdir().unwrap();
    let set = KeySet::load_or_generate(dir.path()).unwrap();
    let now = crate::now();
    let old = set.active_kid(SigningAlgorithm::ES256, now).unwrap();
    let mut claims = Map::new();
    claims.insert("sub".into(), "u1".into());
    let before = set
        .sign(SigningAlgorithm::ES256, "JWT", claims.clone(), now)
        .unwrap();
    assert!(!set.reload().unwrap(), "nothing changed");

    let new = KeySet::rotate(dir.path(), SigningAlgorithm::ES256, 0)
        .unwrap()
        .kid;
    assert_ne!(new, old);
    assert_eq!(
        set.active_kid(SigningAlgorithm::ES256, now + 1).unwrap(),
        old,
        "not before reload"
    );
    assert!(set.reload().unwrap());
    let later = crate::now() + 2;
    assert_eq!(set.active_kid(SigningAlgorithm::ES256, later).unwrap(), new);
    assert!(set.verify(&before).is_ok(), "old tokens still verify");
    let jwks: Value = serde_json::from_slice(&set.jwks_json()).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 4);

    let list = KeySet::list(dir.path()).unwrap();
    let old_info = list.iter().find(|k| k.kid == old).unwrap();
    let new_info = list.iter().find(|k| k.kid == new).unwrap();
    assert_eq!(old_info.retired, Some(new_info.activates));
    assert!(
        new_info.activates <= new_info.created,
        "rotated without delay"
    );
    assert_eq!(new_info.retired, None);
    assert!(list.iter().filter(|k| k.retired.is_none()).count() == 3);

    // Not yet: the old key's tokens may still be alive.
    let retired = new_info.activates;
    assert!(
        KeySet::prune(dir.path(), 600, retired + 600)
            .unwrap()
            .is_empty()
    );
    // Once every token it signed has expired, it goes; active keys never do.
    let removed = KeySet::prune(dir.path(), 600, retired + 601).unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].kid, old);
    assert!(
        KeySet::prune(dir.path(), 0, i64::MAX / 2)
            .unwrap()
            .is_empty()
    );
    assert!(set.reload().unwrap());
    assert!(set.verify(&before).is_err());
    assert_eq!(set.active_kid(SigningAlgorithm::ES256, later).unwrap(), new);
}

#[test]
fn reload_never_generates() {
    let dir = tempfile::tempdir().unwrap();
    let set = KeySet::load_or_generate(dir.path()).unwrap();
    let kid = set.active_kid(SigningAlgorithm::RS256, 0).unwrap();
    for f in fs::read_dir(dir.path()).unwrap() {
        let p = f.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("rs256")
        {
            fs::remove_file(p).unwrap();
        }
    }
    assert!(set.reload().is_err());
    assert_eq!(
        set.active_kid(SigningAlgorithm::RS256, 0).unwrap(),
        kid,
        "kept"
    );
}

#[test]
fn a_prepublished_key_is_published_at_once_and_signs_from_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let set = KeySet::load_or_generate(dir.path()).unwrap();
    let alg = SigningAlgorithm::EdDSA;
    let now = crate::now();
    let old = set.active_kid(alg, now).unwrap();
    let pending = KeySet::rotate(dir.path(), alg, 300).unwrap();
    assert_eq!(pending.activates, pending.created + 300);
    assert!(set.reload().unwrap());
    let jwks: Value = serde_json::from_slice(&set.jwks_json()).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(kids.contains(&pending.kid.as_str()), "published at once");
    // The old key signs until the new one's time, the new one from then on.
    let sign = |at: i64| {
        let token = set.sign(alg, "JWT", Map::new(), at).unwrap();
        assert!(set.verify(&token).is_ok());
        let header = token.split('.').next().unwrap();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        header["kid"].as_str().unwrap().to_owned()
    };
    assert_eq!(sign(pending.activates - 1), old);
    assert_eq!(sign(pending.activates), pending.kid);

    let list = KeySet::list(dir.path()).unwrap();
    let info = |kid: &str| list.iter().find(|k| k.kid == kid).unwrap().clone();
    let before = pending.activates - 1;
    assert_eq!(
        info(&pending.kid).status(before),
        KeyStatus::Pending {
            until: pending.activates
        }
    );
    assert_eq!(
        info(&old).status(before),
        KeyStatus::Active {
            retires: Some(pending.activates)
        }
    );
    assert_eq!(
        info(&old).status(pending.activates),
        KeyStatus::Retired {
            at: pending.activates
        }
    );
    // Not pruned while it still signs, nor the pending key ever.
    assert!(KeySet::prune(dir.path(), 0, before).unwrap().is_empty());
}

#[test]
fn verified_tokens_are_cached_by_digest_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let keys = KeySet::load_or_generate(dir.path()).unwrap();
    let now = crate::now();
    let mut claims = Map::new();
    claims.insert("sub".into(), "u1".into());
    claims.insert("exp".into(), (now + 600).into());
    let token = keys
        .sign(SigningAlgorithm::ES256, "at+jwt", claims, now)
        .unwrap();
    let first = keys.verify(&token).unwrap();
    assert_eq!(keys.snapshot().verified.len(), 1);
    // A hit answers the same claims and type as the verification did.
    assert_eq!(keys.verify(&token).unwrap(), first);
    assert_eq!(first.1.as_deref(), Some("at+jwt"));
    // The same payload under a forged signature is another digest: verified, and refused.
    let (head, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{head}.{}", URL_SAFE_NO_PAD.encode([0u8; 64]));
    assert!(keys.verify(&forged).is_err());
    // A token without `exp` is never cached.
    let mut claims = Map::new();
    claims.insert("sub".into(), "u2".into());
    let forever = keys
        .sign(SigningAlgorithm::ES256, "JWT", claims, now)
        .unwrap();
    keys.verify(&forever).unwrap();
    assert_eq!(keys.snapshot().verified.len(), 1);

    // The bound: filling the cache with live tokens drops half of it, never grows past it.
    let cache = verified::VerifiedCache::default();
    let mut live = Map::new();
    live.insert("exp".into(), (now + 600).into());
    for i in 0..verified::VERIFIED_CACHE_MAX + 1 {
        cache.put(&format!("token-{i}"), &live);
    }
    assert!(cache.len() <= verified::VERIFIED_CACHE_MAX);
    assert!(cache.len() > verified::VERIFIED_CACHE_MAX / 2);
}

#[test]
fn a_set_from_material_signs_and_is_replaced_only_by_a_full_set() {
    let now = crate::now();
    let all: Vec<KeyMaterial> = SigningAlgorithm::ALL
        .into_iter()
        .map(|alg| KeyMaterial::generate(alg, now, 0).unwrap())
        .collect();
    let set = KeySet::from_material(&all).unwrap();
    let mut kids: Vec<String> = all.iter().map(|k| k.kid().unwrap()).collect();
    kids.sort();
    assert_eq!(set.kids(), kids);
    let token = set
        .sign(SigningAlgorithm::EdDSA, "JWT", Map::new(), now)
        .unwrap();
    assert!(set.verify(&token).is_ok());
    assert!(!set.reload().unwrap(), "no folder: its owner reloads it");
    assert!(format!("{:?}", all[0]).contains("KeyMaterial"));
    assert!(
        !format!("{:?}", all[0]).contains("PRIVATE"),
        "no key in Debug"
    );

    // Without an EdDSA key the replacement is refused and the current set stays.
    let partial: Vec<KeyMaterial> = all
        .iter()
        .filter(|k| k.alg != SigningAlgorithm::EdDSA)
        .cloned()
        .collect();
    assert!(matches!(
        set.replace(&partial),
        Err(KeyError::NoKey(SigningAlgorithm::EdDSA))
    ));
    assert_eq!(set.kids(), kids);
    // A PEM that is not a key of its algorithm is refused, naming where it came from.
    let mut bad = all[0].clone();
    bad.pem = b"-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n".to_vec();
    bad.origin = "signing key x in the database".into();
    let err = KeySet::from_material(&[bad]).unwrap_err().to_string();
    assert!(err.starts_with("signing key x in the database:"), "{err}");

    // A pending key joins the set and the old one signs until its time.
    let mut more = all.clone();
    let pending = KeyMaterial::generate(SigningAlgorithm::EdDSA, now, 300).unwrap();
    more.push(pending.clone());
    set.replace(&more).unwrap();
    let old = all[2].kid().unwrap();
    assert_eq!(set.active_kid(SigningAlgorithm::EdDSA, now).unwrap(), old);
    assert_eq!(
        set.active_kid(SigningAlgorithm::EdDSA, now + 300).unwrap(),
        pending.kid().unwrap()
    );
    assert!(set.verify(&token).is_ok(), "old tokens still verify");
}
