//! Colour ramps for the heatmap, and the one mapping from density to colour that the
//! tiles, the legend and the tests all share.
//!
//! Why these ramps: matplotlib's `viridis` (the default) and `cividis` are perceptually
//! uniform and readable with the common colour-vision deficiencies (cividis was designed
//! for them), so equal steps of density look like equal steps of colour to every officer
//! reading the map; `magma` is the sequential dark-to-light alternative for dark basemaps.
//! The 256-entry tables are copied exactly from matplotlib 3.11 (`colormaps[name](i / 255)`).
//!
//! # Scale
//! Linear: `t = density / max`, clamped to `[0, 1]`; colour = table entry
//! `round(255 t)`. A linear scale keeps the legend honest (each stop is a plain density
//! in incidents per km², and halfway along the ramp is half the density). Alpha ramps in
//! linearly from 0 at zero density to opaque at [`ALPHA_FULL_AT`] of the top, so areas
//! with no incidents within the bandwidth are fully transparent and the surface fades in
//! at its rim instead of ending in a hard edge. Map clients set the layer's opacity.
//!
//! A ramp is 256 RGBA steps ([`Ramp::palette`]): step `round(255 t)` has the table's
//! colour and the alpha of its own position (`round(255 min(1, (i / 255) / ALPHA_FULL_AT))`,
//! 0 only for step 0), so every pixel is one of 256 colours and a tile is an 8-bit indexed
//! PNG with this palette (a quarter of the bytes to compress, and smaller tiles).

/// `t` from which pixels are fully opaque.
pub const ALPHA_FULL_AT: f64 = 0.1;

/// Positions along the ramp that the legend describes.
pub const LEGEND_STOPS: [f64; 12] = [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

/// A named colour ramp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Ramp {
    /// Perceptually uniform, colour-blind safe (matplotlib's default).
    #[default]
    Viridis,
    /// Optimised for colour-vision deficiency (Nuñez, Anderton and Renslow 2018).
    Cividis,
    /// Sequential black-purple-orange-cream, for dark basemaps.
    Magma,
}

impl Ramp {
    /// Every ramp, default first.
    pub const ALL: [Ramp; 3] = [Ramp::Viridis, Ramp::Cividis, Ramp::Magma];

    /// The name used in URLs.
    pub fn name(self) -> &'static str {
        match self {
            Ramp::Viridis => "viridis",
            Ramp::Cividis => "cividis",
            Ramp::Magma => "magma",
        }
    }

    /// The ramp with this name (case-insensitive), if any.
    pub fn parse(name: &str) -> Option<Self> {
        Ramp::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The 256 colours, low to high.
    pub fn table(self) -> &'static [[u8; 3]; 256] {
        match self {
            Ramp::Viridis => &VIRIDIS_RGB,
            Ramp::Cividis => &CIVIDIS_RGB,
            Ramp::Magma => &MAGMA_RGB,
        }
    }

    /// The step of ramp position `t`: `round(255 t)`, `t` clamped to `[0, 1]`, NaN 0
    /// (half-up by adding a half, which for these non-negative values is `f64::round`
    /// without its library call).
    #[inline]
    pub fn index(t: f64) -> u8 {
        // NaN stays NaN here, and a NaN cast to an integer is 0.
        let t = t.clamp(0.0, 1.0);
        (t * 255.0 + 0.5) as u8
    }

    /// Alpha of step `i`: 0 for step 0, 255 from [`ALPHA_FULL_AT`] of the top on.
    pub const fn step_alpha(i: u8) -> u8 {
        let a = (i as f64 / 255.0) / ALPHA_FULL_AT;
        let a = if a > 1.0 { 1.0 } else { a };
        (255.0 * a + 0.5) as u8
    }

    /// Alpha at ramp position `t`: that of its step ([`Ramp::step_alpha`]).
    pub fn alpha(t: f64) -> u8 {
        Self::step_alpha(Self::index(t))
    }

    /// The 256 RGBA steps: the table's colours with their steps' alpha, all zero where
    /// the alpha is 0 (step 0).
    pub fn palette(self) -> &'static [[u8; 4]; 256] {
        match self {
            Ramp::Viridis => &VIRIDIS_RGBA,
            Ramp::Cividis => &CIVIDIS_RGBA,
            Ramp::Magma => &MAGMA_RGBA,
        }
    }

    /// The RGBA colour of ramp position `t = density / max`; all zero where the alpha
    /// rounds to 0 (fully transparent pixels carry no colour).
    pub fn rgba(self, t: f64) -> [u8; 4] {
        self.palette()[usize::from(Self::index(t))]
    }

    /// `#rrggbbaa` of ramp position `t`.
    pub fn hex(self, t: f64) -> String {
        let [r, g, b, a] = self.rgba(t);
        format!("#{r:02x}{g:02x}{b:02x}{a:02x}")
    }
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not a lower-case hex digit"),
    }
}

/// Parses 256 `rrggbb` colours at compile time.
const fn table(hex: &str) -> [[u8; 3]; 256] {
    let b = hex.as_bytes();
    assert!(b.len() == 256 * 6, "a ramp has 256 colours");
    let mut out = [[0u8; 3]; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = 0;
        while c < 3 {
            let k = i * 6 + c * 2;
            out[i][c] = nibble(b[k]) * 16 + nibble(b[k + 1]);
            c += 1;
        }
        i += 1;
    }
    out
}

/// The RGBA steps of a table (see the module doc).
const fn palette(rgb: &[[u8; 3]; 256]) -> [[u8; 4]; 256] {
    let mut out = [[0u8; 4]; 256];
    let mut i = 1;
    while i < 256 {
        let [r, g, b] = rgb[i];
        out[i] = [r, g, b, Ramp::step_alpha(i as u8)];
        i += 1;
    }
    out
}

static VIRIDIS_RGB: [[u8; 3]; 256] = table(VIRIDIS);
static CIVIDIS_RGB: [[u8; 3]; 256] = table(CIVIDIS);
static MAGMA_RGB: [[u8; 3]; 256] = table(MAGMA);
static VIRIDIS_RGBA: [[u8; 4]; 256] = palette(&VIRIDIS_RGB);
static CIVIDIS_RGBA: [[u8; 4]; 256] = palette(&CIVIDIS_RGB);
static MAGMA_RGBA: [[u8; 4]; 256] = palette(&MAGMA_RGB);

/// matplotlib's `viridis`, 256 colours as `rrggbb`.
const VIRIDIS: &str = concat!(
    "44015444025645045745055946075a46085c460a5d460b5e470d60470e61471063471164471365481467481668481769",
    "48186a481a6c481b6d481c6e481d6f481f70482071482173482374482475482576482677482878482979472a7a472c7a",
    "472d7b472e7c472f7d46307e46327e46337f463480453581453781453882443983443a83443b84433d84433e85423f85",
    "4240864241864142874144874045884046883f47883f48893e49893e4a893e4c8a3d4d8a3d4e8a3c4f8a3c508b3b518b",
    "3b528b3a538b3a548c39558c39568c38588c38598c375a8c375b8d365c8d365d8d355e8d355f8d34608d34618d33628d",
    "33638d32648e32658e31668e31678e31688e30698e306a8e2f6b8e2f6c8e2e6d8e2e6e8e2e6f8e2d708e2d718e2c718e",
    "2c728e2c738e2b748e2b758e2a768e2a778e2a788e29798e297a8e297b8e287c8e287d8e277e8e277f8e27808e26818e",
    "26828e26828e25838e25848e25858e24868e24878e23888e23898e238a8d228b8d228c8d228d8d218e8d218f8d21908d",
    "21918c20928c20928c20938c1f948c1f958b1f968b1f978b1f988b1f998a1f9a8a1e9b8a1e9c891e9d891f9e891f9f88",
    "1fa0881fa1881fa1871fa28720a38620a48621a58521a68522a78522a88423a98324aa8325ab8225ac8226ad8127ad81",
    "28ae8029af7f2ab07f2cb17e2db27d2eb37c2fb47c31b57b32b67a34b67935b77937b87838b9773aba763bbb753dbc74",
    "3fbc7340bd7242be7144bf7046c06f48c16e4ac16d4cc26c4ec36b50c46a52c56954c56856c66758c7655ac8645cc863",
    "5ec96260ca6063cb5f65cb5e67cc5c69cd5b6ccd5a6ece5870cf5773d05675d05477d1537ad1517cd2507fd34e81d34d",
    "84d44b86d54989d5488bd6468ed64590d74393d74195d84098d83e9bd93c9dd93ba0da39a2da37a5db36a8db34aadc32",
    "addc30b0dd2fb2dd2db5de2bb8de29bade28bddf26c0df25c2df23c5e021c8e020cae11fcde11dd0e11cd2e21bd5e21a",
    "d8e219dae319dde318dfe318e2e418e5e419e7e419eae51aece51befe51cf1e51df4e61ef6e620f8e621fbe723fde725",
);

/// matplotlib's `cividis`, 256 colours as `rrggbb`.
const CIVIDIS: &str = concat!(
    "00224e00234f00245100255300255400265600275800285900285b00295d002a5f002a61002b62002c64002c66002d68",
    "002e6a002e6c002f6d00306f0030700031700031710132710533710833700c34700f357012357014367016377018376f",
    "1a386f1c396f1e3a6f203a6f213b6e233c6e243c6e263d6e273e6e293f6e2a3f6d2b406d2d416d2e416d2f426d31436d",
    "32436d33446d34456c35456c36466c38476c39486c3a486c3b496c3c4a6c3d4a6c3e4b6c3f4c6c404c6c414d6c424e6c",
    "434e6c444f6c45506c46516c47516c48526c49536c4a536c4b546c4c556c4d556c4e566c4f576c50576c51586d52596d",
    "535a6d545a6d555b6d555c6d565c6d575d6d585e6d595e6e5a5f6e5b606e5c616e5d616e5e626e5e636f5f636f60646f",
    "61656f62656f636670646770656870656870666970676a71686a71696b716a6c716b6d726c6d726c6e726d6f726e6f73",
    "6f70737071737172747272747273747374757474757575757676767777767777777878777979777a7a787b7a787c7b78",
    "7d7c787e7c787e7d787f7e78807f78817f788280798381798482798582798683798784788885788985788a86788b8778",
    "8c88788d88788e89788f8a78908b78918b78928c78928d78938e78948e77958f779690779791779892779992779a9376",
    "9b94769c95769d95769e96769f9775a09875a19975a29975a39a74a49b74a59c74a69c74a79d73a89e73a99f73aaa073",
    "aba072aca172ada272aea371afa471b0a571b1a570b3a670b4a76fb5a86fb6a96fb7a96eb8aa6eb9ab6dbaac6dbbad6d",
    "bcae6cbdae6cbeaf6bbfb06bc0b16ac1b26ac2b369c3b369c4b468c5b568c6b667c7b767c8b866c9b965cbb965ccba64",
    "cdbb63cebc63cfbd62d0be62d1bf61d2c060d3c05fd4c15fd5c25ed6c35dd7c45cd9c55cdac65bdbc75adcc859ddc858",
    "dec958dfca57e0cb56e1cc55e2cd54e4ce53e5cf52e6d051e7d150e8d24fe9d34eead34cebd44bedd54aeed649efd748",
    "f0d846f1d945f2da44f3db42f5dc41f6dd3ff7de3ef8df3cf9e03afbe138fce236fde334fee434fee535fee636fee838",
);

/// matplotlib's `magma`, 256 colours as `rrggbb`.
const MAGMA: &str = concat!(
    "00000401000501010601010802010902020b02020d03030f03031204041405041606051806051a07061c08071e090720",
    "0a08220b09240c09260d0a290e0b2b100b2d110c2f120d31130d34140e36150e38160f3b180f3d19103f1a10421c1044",
    "1d11471e114920114b21114e22115024125325125527125829115a2a115c2c115f2d11612f1163311165331067341069",
    "36106b38106c390f6e3b0f703d0f713f0f72400f74420f75440f764510774710784910784a10794c117a4e117b4f127b",
    "51127c52137c54137d56147d57157e59157e5a167e5c167f5d177f5f187f601880621980641a80651a80671b80681c81",
    "6a1c816b1d816d1d816e1e81701f81721f817320817521817621817822817922827b23827c23827e2482802582812581",
    "8326818426818627818827818928818b29818c29818e2a81902a81912b81932b80942c80962c80982d80992d809b2e7f",
    "9c2e7f9e2f7fa02f7fa1307ea3307ea5317ea6317da8327daa337dab337cad347cae347bb0357bb2357bb3367ab5367a",
    "b73779b83779ba3878bc3978bd3977bf3a77c03a76c23b75c43c75c53c74c73d73c83e73ca3e72cc3f71cd4071cf4070",
    "d0416fd2426fd3436ed5446dd6456cd8456cd9466bdb476adc4869de4968df4a68e04c67e24d66e34e65e44f64e55064",
    "e75263e85362e95462ea5661eb5760ec5860ed5a5fee5b5eef5d5ef05f5ef1605df2625df2645cf3655cf4675cf4695c",
    "f56b5cf66c5cf66e5cf7705cf7725cf8745cf8765cf9785df9795df97b5dfa7d5efa7f5efa815ffb835ffb8560fb8761",
    "fc8961fc8a62fc8c63fc8e64fc9065fd9266fd9467fd9668fd9869fd9a6afd9b6bfe9d6cfe9f6dfea16efea36ffea571",
    "fea772fea973feaa74feac76feae77feb078feb27afeb47bfeb67cfeb77efeb97ffebb81febd82febf84fec185fec287",
    "fec488fec68afec88cfeca8dfecc8ffecd90fecf92fed194fed395fed597fed799fed89afdda9cfddc9efddea0fde0a1",
    "fde2a3fde3a5fde5a7fde7a9fde9aafdebacfcecaefceeb0fcf0b2fcf2b4fcf4b6fcf6b8fcf7b9fcf9bbfcfbbdfcfdbf",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_match_matplotlib_ends_and_names_parse() {
        assert_eq!(Ramp::Viridis.table()[0], [0x44, 0x01, 0x54]);
        assert_eq!(Ramp::Viridis.table()[255], [0xfd, 0xe7, 0x25]);
        assert_eq!(Ramp::Magma.table()[0], [0x00, 0x00, 0x04]);
        assert_eq!(Ramp::Magma.table()[255], [0xfc, 0xfd, 0xbf]);
        assert_eq!(Ramp::Cividis.table()[0], [0x00, 0x22, 0x4e]);
        for r in Ramp::ALL {
            assert_eq!(Ramp::parse(&r.name().to_uppercase()), Some(r));
        }
        assert_eq!(Ramp::parse("jet"), None);
    }

    #[test]
    fn alpha_ramps_in_and_positions_clamp() {
        assert_eq!(Ramp::alpha(0.0), 0);
        // Alpha is that of the step: 0.05 is step 13 of 255, 13 / 25.5 of full.
        assert_eq!(Ramp::alpha(ALPHA_FULL_AT / 2.0), 130);
        assert_eq!(Ramp::alpha(ALPHA_FULL_AT), 255);
        assert_eq!(Ramp::step_alpha(1), 10);
        for r in Ramp::ALL {
            let p = r.palette();
            // Only step 0 is transparent (and carries no colour); each step has its
            // table colour; alpha never falls along the ramp.
            assert_eq!(p[0], [0; 4]);
            assert!(p[1..].iter().all(|c| c[3] > 0));
            assert!(p.windows(2).all(|w| w[0][3] <= w[1][3]));
            for (i, c) in p.iter().enumerate().skip(1) {
                assert_eq!(c[..3], r.table()[i], "{r:?} {i}");
                assert_eq!(r.rgba(i as f64 / 255.0), *c);
            }
        }
        assert_eq!(Ramp::alpha(f64::NAN), 0);
        assert_eq!(Ramp::index(2.0), 255);
        assert_eq!(Ramp::index(-1.0), 0);
        assert_eq!(Ramp::Viridis.hex(1.0), "#fde725ff");
        assert_eq!(Ramp::Viridis.hex(0.0), "#00000000");
    }
}
