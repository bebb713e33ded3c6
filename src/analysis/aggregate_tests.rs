use super::*;
use crate::spatial::geography::Vintage;

#[test]
fn unit_parsing_accepts_the_documented_forms_only() {
    assert!(matches!("h3:9".parse::<Unit>(), Ok(Unit::H3(r)) if u8::from(r) == 9));
    assert!(matches!(
        "LSOA".parse::<Unit>(),
        Ok(Unit::Lsoa(Vintage::V2011))
    ));
    assert!(matches!(
        "lsoa21".parse::<Unit>(),
        Ok(Unit::Lsoa(Vintage::V2021))
    ));
    assert!(matches!("district".parse::<Unit>(), Ok(Unit::District)));
    for bad in ["h3:4", "h3:12", "h3:x", "hex", ""] {
        assert!(bad.parse::<Unit>().is_err(), "{bad}");
    }
}
