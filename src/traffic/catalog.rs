//! A synthetic catalog: `count` objects whose sizes are fixed by the seed
//! and their key, requested with Zipf or uniform popularity. Request `i` is
//! drawn on its own stream, so the sequence is the same whatever the
//! concurrency or the order in which workers take requests.

use super::rng::Rng;
use super::sizes::SizeDist;
use super::zipf::Zipf;

/// Where the origin serves synthetic objects: `/objects/<key>/<size>`.
pub const OBJECTS_PREFIX: &str = "/objects/";

/// How requests spread over the catalog.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Popularity {
    /// Rank `r` with probability ∝ `r^-alpha`.
    Zipf {
        alpha: f64,
    },
    Uniform,
}

/// One object: its key (text without `/`) and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub size: u64,
}

impl Object {
    /// The origin's path for it: `/objects/<key>/<size>`, the key
    /// percent-encoded where a URI needs it.
    pub fn path(&self) -> String {
        object_path(&self.key, self.size)
    }
}

/// `/objects/<key>/<size>`, the key percent-encoded where a URI needs it:
/// one allocation of the right size, no formatter (a replay builds one per
/// request).
pub fn object_path(key: &str, size: u64) -> String {
    let mut path = String::with_capacity(OBJECTS_PREFIX.len() + key.len() + 21);
    path.push_str(OBJECTS_PREFIX);
    for piece in percent_encoding::utf8_percent_encode(key, KEY_ESCAPES) {
        path.push_str(piece);
    }
    path.push('/');
    // The size's decimal digits, most significant first.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = size;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        path.push(char::from(d));
    }
    path
}

/// Bytes escaped in a key's path segment: controls, space, and what ends
/// or splits a path (`? # %` and `/`, which keys never hold anyway).
const KEY_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Streams of the seed's generator, one per purpose.
const SIZE_STREAM: u64 = 1;
const DRAW_STREAM: u64 = 2;

#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    count: u64,
    popularity: Popularity,
    sizes: SizeDist,
    seed: u64,
    zipf: Option<Zipf>,
}

impl Catalog {
    /// `count >= 1` objects; `alpha > 0` (checked by the caller).
    pub fn new(count: u64, popularity: Popularity, sizes: SizeDist, seed: u64) -> Self {
        let zipf = match popularity {
            Popularity::Zipf { alpha } => Some(Zipf::new(count, alpha)),
            Popularity::Uniform => None,
        };
        Catalog {
            count: count.max(1),
            popularity,
            sizes,
            seed,
            zipf,
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn popularity(&self) -> Popularity {
        self.popularity
    }

    pub fn sizes(&self) -> SizeDist {
        self.sizes
    }

    /// The object of popularity rank `rank` (1 = most popular); its key is the rank.
    pub fn object(&self, rank: u64) -> Object {
        let size = self
            .sizes
            .sample(&mut Rng::at(self.seed, SIZE_STREAM, rank));
        Object {
            key: rank.to_string(),
            size,
        }
    }

    /// The object that request `index` asks for.
    pub fn request(&self, index: u64) -> Object {
        let mut rng = Rng::at(self.seed, DRAW_STREAM, index);
        let rank = match &self.zipf {
            Some(z) => z.sample(&mut rng),
            None => 1 + (rng.next_f64() * self.count as f64) as u64,
        };
        self.object(rank.min(self.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-built path is what the formatter wrote before it.
    #[test]
    fn object_paths_are_the_formatted_ones() {
        for (key, size) in [
            ("1", 0),
            ("42", 64),
            ("a b?c#d%e", 16384),
            ("ünï", 7),
            ("x", u64::MAX),
            ("`{}`<\">", 1 << 30),
        ] {
            let key_enc = percent_encoding::utf8_percent_encode(key, KEY_ESCAPES);
            let want = format!("{OBJECTS_PREFIX}{key_enc}/{size}");
            assert_eq!(object_path(key, size), want);
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_requests_and_sizes() {
        let sizes = SizeDist::LogNormal {
            median: 16384,
            sigma: 1.5,
            max: 8 << 20,
        };
        let a = Catalog::new(1000, Popularity::Zipf { alpha: 0.8 }, sizes, 5);
        let b = Catalog::new(1000, Popularity::Zipf { alpha: 0.8 }, sizes, 5);
        let c = Catalog::new(1000, Popularity::Zipf { alpha: 0.8 }, sizes, 6);
        let seq = |cat: &Catalog| (0..200).map(|i| cat.request(i)).collect::<Vec<_>>();
        assert_eq!(seq(&a), seq(&b));
        assert_ne!(seq(&a), seq(&c));
        // A key keeps its size wherever it is requested.
        for o in seq(&a) {
            let rank: u64 = o.key.parse().expect("keys are ranks");
            assert_eq!(a.object(rank).size, o.size);
        }
    }

    #[test]
    fn uniform_requests_cover_the_catalog_evenly() {
        let cat = Catalog::new(10, Popularity::Uniform, SizeDist::Fixed(100), 1);
        let mut counts = [0u32; 10];
        for i in 0..100_000 {
            let o = cat.request(i);
            assert_eq!(o.size, 100);
            counts[o.key.parse::<usize>().expect("a rank") - 1] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_500..10_500).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn paths_escape_what_a_uri_cannot_hold() {
        let o = Object {
            key: "a b?c%".into(),
            size: 7,
        };
        assert_eq!(o.path(), "/objects/a%20b%3Fc%25/7");
    }
}
