//! A gzip member of many zeros written without a compressor: a few kilobytes that inflate to
//! megabytes, for the tests that send or serve compressed bombs.
#![allow(dead_code, unreachable_pub)]

/// A gzip member holding `n` zero bytes, stored as a handful of fixed-Huffman deflate blocks.
pub fn gzip_of_zeros(n: usize) -> Vec<u8> {
    // Hand-assembled: a stored block would be as large as its content, so use the shortest
    // valid encoding we can write without a compressor: a literal zero then back-references of
    // length 258 at distance 1. Fixed Huffman: literal 0 = 00110000 (8 bits), length 258 = code
    // 285 = 11000101 (8 bits, no extra), distance 1 = 00000 (5 bits, no extra).
    let mut bits = BitWriter::default();
    bits.push(1, 1); // BFINAL
    bits.push(0b01, 2); // BTYPE = fixed Huffman
    bits.push_code(0b0011_0000, 8);
    let mut produced = 1usize;
    while produced + 258 <= n {
        bits.push_code(0b1100_0101, 8);
        bits.push_code(0, 5);
        produced += 258;
    }
    while produced < n {
        bits.push_code(0b0011_0000, 8);
        produced += 1;
    }
    bits.push_code(0, 7); // end of block (256)
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend(bits.finish());
    out.extend(crc32_of_zeros(n).to_le_bytes());
    out.extend((n as u32).to_le_bytes());
    out
}

#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    current: u8,
    used: u8,
}

impl BitWriter {
    /// Pushes `count` bits of `value`, least significant first (header fields).
    fn push(&mut self, value: u32, count: u8) {
        for i in 0..count {
            self.bit((value >> i) & 1 == 1);
        }
    }

    /// Pushes a Huffman code, most significant bit first.
    fn push_code(&mut self, code: u32, count: u8) {
        for i in (0..count).rev() {
            self.bit((code >> i) & 1 == 1);
        }
    }

    fn bit(&mut self, set: bool) {
        if set {
            self.current |= 1 << self.used;
        }
        self.used += 1;
        if self.used == 8 {
            self.bytes.push(self.current);
            self.current = 0;
            self.used = 0;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.used > 0 {
            self.bytes.push(self.current);
        }
        self.bytes
    }
}

fn crc32_of_zeros(n: usize) -> u32 {
    let mut crc = !0u32;
    for _ in 0..n {
        crc ^= 0;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
