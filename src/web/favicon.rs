//! `/favicon.ico`, drawn here (a white play triangle on a blue disc, 16×16) so that browsers
//! get an icon instead of a 404 and the appliance ships no image file.

const SIZE: usize = 16;
/// ICONDIR (6 bytes) and one ICONDIRENTRY (16).
const HEADERS: usize = 6 + 16;
/// BITMAPINFOHEADER.
const INFO: usize = 40;
const PIXELS: usize = SIZE * SIZE * 4;
/// One bit a pixel, rows padded to 32 bits; all zero: the alpha channel decides.
const MASK: usize = SIZE * 4;

/// The icon file.
pub fn favicon_ico() -> Vec<u8> {
    let image = (INFO + PIXELS + MASK) as u32;
    let mut ico = Vec::with_capacity(HEADERS + image as usize);
    ico.extend_from_slice(&[0, 0, 1, 0, 1, 0]);
    ico.extend_from_slice(&[SIZE as u8, SIZE as u8, 0, 0, 1, 0, 32, 0]);
    ico.extend_from_slice(&image.to_le_bytes());
    ico.extend_from_slice(&(HEADERS as u32).to_le_bytes());
    ico.extend_from_slice(&(INFO as u32).to_le_bytes());
    ico.extend_from_slice(&(SIZE as i32).to_le_bytes());
    // The height counts the colour rows and the mask rows.
    ico.extend_from_slice(&(2 * SIZE as i32).to_le_bytes());
    ico.extend_from_slice(&[1, 0, 32, 0]);
    ico.extend_from_slice(&[0; 24]);
    // Rows bottom-up, BGRA.
    for row in (0..SIZE).rev() {
        for column in 0..SIZE {
            ico.extend_from_slice(&pixel(column as f32 + 0.5, row as f32 + 0.5));
        }
    }
    ico.resize(ico.len() + MASK, 0);
    ico
}

/// The colour at the centre of a pixel (x right, y down), as BGRA.
fn pixel(x: f32, y: f32) -> [u8; 4] {
    const BLUE: [u8; 4] = [0xd1, 0x5f, 0x1d, 0xff];
    const WHITE: [u8; 4] = [0xff; 4];
    let (dx, dy) = (x - 8.0, y - 8.0);
    if dx * dx + dy * dy > 7.5 * 7.5 {
        return [0; 4];
    }
    // The triangle: from x = 6 to 12, narrowing to its tip at y = 8.
    let half_height = (12.0 - x) * 4.0 / 6.0;
    if (6.0..=12.0).contains(&x) && dy.abs() <= half_height {
        WHITE
    } else {
        BLUE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_icon_is_a_well_formed_16_by_16_ico() {
        let ico = favicon_ico();
        assert_eq!(&ico[..6], &[0, 0, 1, 0, 1, 0], "ICO with one image");
        let size = u32::from_le_bytes(ico[14..18].try_into().unwrap()) as usize;
        let offset = u32::from_le_bytes(ico[18..22].try_into().unwrap()) as usize;
        assert_eq!(offset + size, ico.len());
        assert_eq!(u32::from_le_bytes(ico[22..26].try_into().unwrap()), 40);
        let pixels = &ico[offset + INFO..offset + INFO + PIXELS];
        let opaque = pixels.chunks(4).filter(|p| p[3] == 0xff).count();
        let white = pixels.chunks(4).filter(|p| p == &[0xff; 4]).count();
        assert!(
            (150..=200).contains(&opaque),
            "a disc: {opaque} opaque pixels"
        );
        assert!(
            (10..=40).contains(&white),
            "a triangle: {white} white pixels"
        );
        assert_eq!(pixels[..4], [0; 4], "the corner is transparent");
    }
}
