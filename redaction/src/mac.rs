//! HMAC-SHA256 (RFC 2104) of short values, straight on SHA-256's compression function.
//!
//! A hash mask is the HMAC of one value, usually an e-mail address or a card number: one block
//! for the inner hash and one for the outer. The `hmac` crate gets there through a clone of
//! its two digest states with their buffers, a buffered update and two finalizations; here the
//! key's two padded blocks are compressed once, when the masker is made, and a value of at most
//! [`ONE_BLOCK`] bytes costs two calls of `sha2::compress256` (the CPU's SHA instructions where
//! it has them) and nothing else. Longer values take the `hmac` crate's path, with the same
//! result.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sha2::digest::generic_array::GenericArray;

/// The longest value hashed in one inner block: 64 bytes less the `0x80` pad byte and the
/// 8-byte length.
const ONE_BLOCK: usize = 55;

/// SHA-256's initial state (FIPS 180-4, 5.3.3).
const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// An HMAC-SHA256 key, ready to hash: the states after its inner and outer padded blocks.
#[derive(Clone)]
pub struct MacKey {
    inner: [u32; 8],
    outer: [u32; 8],
    /// For values longer than one block.
    long: Hmac<Sha256>,
}

impl MacKey {
    /// The key `secret` (any length: one longer than a block is hashed first, as RFC 2104 says).
    pub fn new(secret: &[u8]) -> Option<Self> {
        let long = Hmac::<Sha256>::new_from_slice(secret).ok()?;
        let mut block = [0u8; 64];
        match block.get_mut(..secret.len()) {
            Some(head) => head.copy_from_slice(secret),
            None => {
                let digest = <Sha256 as sha2::Digest>::digest(secret);
                block.get_mut(..32)?.copy_from_slice(&digest);
            }
        }
        let padded = |pad: u8| {
            let mut state = IV;
            let mut b = block;
            b.iter_mut().for_each(|byte| *byte ^= pad);
            compress(&mut state, &b);
            state
        };
        Some(MacKey {
            inner: padded(0x36),
            outer: padded(0x5c),
            long,
        })
    }

    /// HMAC-SHA256 of `value` under this key.
    pub fn sign(&self, value: &[u8]) -> [u8; 32] {
        if value.len() > ONE_BLOCK {
            let mut mac = self.long.clone();
            mac.update(value);
            return mac.finalize().into_bytes().into();
        }
        let mut block = [0u8; 64];
        if let Some(head) = block.get_mut(..value.len()) {
            head.copy_from_slice(value);
        }
        let mut inner = self.inner;
        compress(&mut inner, &last_block(block, value.len()));
        let mut digest = [0u8; 64];
        for (bytes, word) in digest.chunks_exact_mut(4).zip(inner) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        let mut outer = self.outer;
        compress(&mut outer, &last_block(digest, 32));
        let mut mac = [0u8; 32];
        for (bytes, word) in mac.chunks_exact_mut(4).zip(outer) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        mac
    }
}

/// `block` holding `len` (at most [`ONE_BLOCK`]) bytes of a message that follows one key
/// block, padded as SHA-256's last block: `0x80`, zeros, the message's length in bits.
fn last_block(mut block: [u8; 64], len: usize) -> [u8; 64] {
    if let Some(pad) = block.get_mut(len) {
        *pad = 0x80;
    }
    let bits = (64 + len as u64) * 8;
    if let Some(tail) = block.get_mut(56..) {
        tail.copy_from_slice(&bits.to_be_bytes());
    }
    block
}

fn compress(state: &mut [u32; 8], block: &[u8; 64]) {
    sha2::compress256(state, &[*GenericArray::from_slice(block)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(mac: &[u8]) -> String {
        mac.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc_4231_vectors() {
        // Test cases 1, 2 and 6 (a key longer than a block, a value longer than one).
        let cases: [(&[u8], &[u8], &str); 3] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
        ];
        for (key, data, want) in cases {
            let key = MacKey::new(key).expect("any key length");
            assert_eq!(hex(&key.sign(data)), want);
        }
    }

    #[test]
    fn every_length_around_the_block_matches_the_hmac_crate() {
        for key_len in [0, 1, 32, 63, 64, 65, 200] {
            let secret: Vec<u8> = (0..key_len).map(|i| i as u8 ^ 0x5a).collect();
            let key = MacKey::new(&secret).expect("any key length");
            for len in 0..=130 {
                let value: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let mut want = Hmac::<Sha256>::new_from_slice(&secret).expect("any key length");
                want.update(&value);
                let want: [u8; 32] = want.finalize().into_bytes().into();
                assert_eq!(key.sign(&value), want, "key {key_len} bytes, value {len}");
            }
        }
    }
}
