//! CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as LevelDB tables and TensorFlow
//! bundles use it, and LevelDB's mask (stored CRCs are masked so that a CRC of data holding
//! CRCs stays well distributed).

const POLY: u32 = 0x82F6_3B78;

const fn table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static TABLE: [u32; 256] = table();

/// The CRC of `crc`'s data followed by `data`.
pub fn extend(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        c = TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

pub fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_values() {
        // RFC 3720's test vector, and the empty string.
        assert_eq!(super::extend(0, b"123456789"), 0xE306_9283);
        assert_eq!(super::extend(0, b""), 0);
        let whole = super::extend(0, b"123456789");
        assert_eq!(super::extend(super::extend(0, b"1234"), b"56789"), whole);
    }
}
