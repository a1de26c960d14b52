//! Sample grids: row labels drawn in the 5 × 7 font beside the images, which stay as they were.

use wgen::data::ImageShape;
use wgen::image::{glyph, grid, label_rows, text_width, GLYPH_HEIGHT, GLYPH_WIDTH};

/// A 2 × 3 grid of 4 × 4 grey images, each a constant grey of its own, 1 pixel of padding.
fn small_grid() -> (wgen::image::Picture, usize) {
    let shape = ImageShape { channels: 1, side: 4 };
    let images: Vec<f32> = (0..6).flat_map(|i| vec![(i + 1) as f32 / 8.0; 16]).collect();
    (grid(&images, shape, 3, 1, 1), 4 + 1)
}

#[test]
fn a_label_draws_its_glyphs_pixel_for_pixel_in_a_margin_left_of_unchanged_images() {
    let (g, cell) = small_grid();
    // Cells of 5 pixels: text at 1×, a margin of the text and a pixel either side.
    let labeled = label_rows(&g, &["A1".to_string(), "-".to_string()], cell, 1);
    let margin = text_width("A1", 1) + 2;
    assert_eq!(margin, 11 + 2, "two glyphs and the blank column between them");
    assert_eq!((labeled.width, labeled.height, labeled.channels), (g.width + margin, g.height, 1));
    for y in 0..g.height {
        assert_eq!(labeled.pixels[y * labeled.width + margin..(y + 1) * labeled.width], g.pixels[y * g.width..(y + 1) * g.width], "row {y} of the images");
    }
    // Row 0's 7-pixel glyphs in 5-pixel cells start at the top padding and are clipped by
    // nothing but the picture: 'A' from x = 1, '1' from x = 7.
    let lit = |x: usize, y: usize| labeled.pixels[y * labeled.width + x] == 255;
    for (left, c) in [(1, 'A'), (7, '1')] {
        for (gy, bits) in glyph(c).iter().enumerate().filter(|(gy, _)| 1 + gy < g.height) {
            for gx in 0..GLYPH_WIDTH {
                assert_eq!(lit(left + gx, 1 + gy), bits & (0x10 >> gx) != 0, "{c} at ({gx}, {gy})");
            }
        }
    }
    // The column between the glyphs and the margin's edges stay black.
    assert!((0..g.height).all(|y| !lit(0, y) && !lit(6, y) && !lit(margin - 1, y)));
}

#[test]
fn letters_draw_as_capitals_and_characters_without_a_glyph_as_a_question_mark() {
    assert_eq!(glyph('a'), glyph('A'));
    assert_ne!(glyph('a'), glyph('b'));
    assert_eq!(glyph('é'), glyph('ß'), "one stand-in for every uncovered character");
    assert_ne!(glyph('é'), glyph(' '));
    assert!(glyph(' ').iter().all(|&row| row == 0));
    // Every glyph fits its 5 columns and differs from the others among a folder name's marks.
    let marks: Vec<char> = ('A'..='Z').chain('0'..='9').chain("-_.& ".chars()).collect();
    for (i, &a) in marks.iter().enumerate() {
        assert!(glyph(a).iter().all(|&row| row < 0x20), "{a}");
        for &b in &marks[i + 1..] {
            assert_ne!(glyph(a), glyph(b), "{a} and {b} look the same");
        }
    }
    assert_eq!(GLYPH_HEIGHT, glyph('A').len());
}

#[test]
fn the_text_scales_with_the_cells_and_colour_grids_get_white_text() {
    let shape = ImageShape { channels: 3, side: 28 };
    let images = vec![0.5; 2 * shape.values()];
    let g = grid(&images, shape, 1, 2, 3);
    // Cells of 86 pixels: text at 3×, 15 pixels a glyph, 3 pixels either side.
    let labeled = label_rows(&g, &["7".to_string(), "x".to_string()], 28 * 3 + 2, 2);
    assert_eq!(labeled.width, g.width + 15 + 6);
    assert_eq!(labeled.channels, 3);
    // '7''s top row is lit across: 3 × 5 pixels of white, centred in row 0's cell.
    let top = 2 + (86 - 2 - 21) / 2;
    let row: Vec<u8> = labeled.pixels[(top * labeled.width + 3) * 3..(top * labeled.width + 18) * 3].to_vec();
    assert!(row.iter().all(|&v| v == 255), "{row:?}");
}
