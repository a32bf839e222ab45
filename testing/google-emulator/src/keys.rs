//! RSA signing keys, RS256 JWTs and the JWKS that publishes them, like an EKS cluster's
//! OIDC issuer does.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{self, KeyPair as _};
use base64::Engine as _;
use serde_json::{Value, json};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub struct SigningKey {
    pub kid: String,
    pair: KeyPair,
}

impl SigningKey {
    pub fn generate(kid: &str) -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        Self { kid: kid.to_owned(), pair }
    }

    /// The private key as PKCS#8 PEM, as in a Google service-account key file.
    pub fn pkcs8_pem(&self) -> String {
        use aws_lc_rs::encoding::AsDer;
        let der: aws_lc_rs::encoding::Pkcs8V1Der = self.pair.as_der().expect("PKCS#8 export");
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64")).collect();
        format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"))
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        let pk = self.pair.public_key();
        json!({
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": b64(pk.modulus().big_endian_without_leading_zero()),
            "e": b64(pk.exponent().big_endian_without_leading_zero()),
        })
    }

    /// A compact RS256 JWT with this key's `kid` (or `kid_override`) in the header.
    pub fn sign(&self, claims: &Value, kid_override: Option<&str>) -> String {
        let header = json!({"alg": "RS256", "kid": kid_override.unwrap_or(&self.kid), "typ": "JWT"});
        let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), signing_input.as_bytes(), &mut sig)
            .expect("RSA signing");
        format!("{signing_input}.{}", b64(&sig))
    }
}

/// A JWT split into its parts; nothing is trusted yet.
pub struct Parsed {
    pub header: Value,
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

pub fn parse(token: &str) -> Option<Parsed> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return None;
    }
    let dec = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok();
    Some(Parsed {
        header: serde_json::from_slice(&dec(parts[0])?).ok()?,
        claims: serde_json::from_slice(&dec(parts[1])?).ok()?,
        signing_input: format!("{}.{}", parts[0], parts[1]),
        signature: dec(parts[2])?,
    })
}

/// Verifies an RS256 signature against a JWK.
pub fn verify(p: &Parsed, jwk: &Value) -> bool {
    let dec = |k: &str| jwk[k].as_str().and_then(|s| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok());
    let (Some(n), Some(e)) = (dec("n"), dec("e")) else { return false };
    signature::RsaPublicKeyComponents { n: &n, e: &e }
        .verify(&signature::RSA_PKCS1_2048_8192_SHA256, p.signing_input.as_bytes(), &p.signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_and_rejects_another_key() {
        let k = SigningKey::generate("k1");
        let other = SigningKey::generate("k1");
        let t = k.sign(&json!({"sub": "x"}), None);
        let p = parse(&t).unwrap();
        assert_eq!(p.claims["sub"], "x");
        assert_eq!(p.header["kid"], "k1");
        assert!(verify(&p, &k.jwk()));
        assert!(!verify(&p, &other.jwk()));
    }
}
