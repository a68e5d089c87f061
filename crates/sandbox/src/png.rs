//! A minimal PNG writer for the sandbox's Mini Program codes: 8-bit greyscale, the image
//! data in stored (uncompressed) deflate blocks, so no compression crate is needed. Any
//! PNG decoder reads it.

/// A `side` x `side` picture of `seed`'s SHA-256 as an 8x8 grid of black and white
/// squares.
pub fn grid(seed: &[u8], side: u32) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let n = side as usize;
    let bits = Sha256::digest(seed);
    let mut raw = Vec::with_capacity(n * (n + 1));
    for y in 0..n {
        raw.push(0); // filter: none
        for x in 0..n {
            let cell = (y * 8 / n) * 8 + x * 8 / n;
            let on = bits[cell / 8] >> (cell % 8) & 1 == 1;
            raw.push(if on { 0 } else { 255 });
        }
    }
    encode_grey(side, side, &raw)
}

/// A greyscale PNG of `width` x `height` from filtered scanlines (`raw`).
fn encode_grey(width: u32, height: u32, raw: &[u8]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]); // 8 bits, greyscale, deflate, adaptive filter, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib_stored(raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend(kind);
    out.extend(data);
    let crc = crc32(&out[start..]);
    out.extend(crc.to_be_bytes());
}

/// A zlib stream of stored deflate blocks (at most 65535 bytes each).
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = data.chunks(65535).collect();
    for (i, block) in blocks.iter().enumerate() {
        out.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend(*block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend(((b << 16) | a).to_be_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_of_the_standard_check_string() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn a_grid_is_a_png_and_depends_on_its_seed() {
        let a = grid(b"scene=1", 64);
        assert!(a.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&a[12..16], b"IHDR");
        assert!(a.ends_with(&[0xae, 0x42, 0x60, 0x82]), "IEND's CRC");
        assert_eq!(a, grid(b"scene=1", 64));
        assert_ne!(a, grid(b"scene=2", 64));
    }
}
