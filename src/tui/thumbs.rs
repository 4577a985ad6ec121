//! Thumbnails: decoded, scaled and encoded for the terminal's graphics protocol off the UI
//! thread. The one encoder `browse` and `bench tui` share.

use std::path::{Path, PathBuf};

use crossbeam_channel::{unbounded, Sender};
use ratatui::layout::Size;
use ratatui_image::picker::Picker;
use ratatui_image::protocol::Protocol;
use ratatui_image::Resize;

use super::ThumbKey;

/// Thumbnail size in terminal cells.
pub const THUMB_CELLS: Size = Size { width: 8, height: 4 };

/// Decodes `path` and encodes it to fit `cells` with `picker`'s protocol.
pub fn encode(picker: &Picker, path: &Path, cells: Size) -> anyhow::Result<Protocol> {
    let img = crate::decode::load_rgb(path)?;
    let small = image::DynamicImage::ImageRgb8(image::imageops::thumbnail(&img, 160, 160));
    Ok(picker.new_protocol(small, cells, Resize::Fit(None))?)
}

/// Starts the thumbnail worker: keys in, `(key, protocol)` to `sink`; dataset ids are looked
/// up in `paths`. Each key is encoded once (the app asks once).
pub fn spawn(
    picker: Picker,
    paths: Vec<PathBuf>,
    sink: impl Fn(ThumbKey, Protocol) -> bool + Send + 'static,
) -> Sender<ThumbKey> {
    let (tx, rx) = unbounded::<ThumbKey>();
    std::thread::spawn(move || {
        for key in rx {
            let path = match &key {
                ThumbKey::Image(id) => paths.get(*id as usize).cloned(),
                ThumbKey::Outside(p) => Some(p.clone()),
            };
            let Some(path) = path else { continue };
            // An image that cannot be drawn keeps its placeholder; the engine reports why.
            let Ok(p) = encode(&picker, &path, THUMB_CELLS) else { continue };
            if !sink(key, p) {
                return;
            }
        }
    });
    tx
}
