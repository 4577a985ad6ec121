//! Thumbnails: decoded, scaled and encoded for the terminal's graphics protocol off the UI
//! thread, at the size the layout asks for. The one encoder `browse`, `bench tui` and
//! `search --show` share. Recently decoded photos are kept (small) so that a resize only
//! re-encodes.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use crossbeam_channel::{unbounded, Sender};
use image::RgbImage;
use ratatui::layout::Size;
use ratatui_image::picker::Picker;
use ratatui_image::protocol::Protocol;
use ratatui_image::Resize;

use super::ThumbKey;
use crate::decode::DecodeOptions;

/// Decoded photos kept, each at most 640 px on its long side (~1.2 MB).
const KEEP: usize = 256;

/// A photo scaled to at most 640 px on its long side: enough for any thumbnail.
pub fn small(path: &Path, opts: &DecodeOptions) -> anyhow::Result<RgbImage> {
    let img = crate::decode::load(path, opts)?.image;
    Ok(image::imageops::thumbnail(&img, 640.min(img.width()), 640.min(img.height())))
}

/// Encodes `img` to fit `cells` with `picker`'s protocol.
pub fn encode(picker: &Picker, img: &RgbImage, cells: Size) -> anyhow::Result<Protocol> {
    let (fw, fh) = (picker.font_size().width.max(1), picker.font_size().height.max(1));
    let (w, h) = (u32::from(cells.width * fw), u32::from(cells.height * fh));
    let scaled = image::imageops::thumbnail(img, w.max(1), h.max(1));
    Ok(picker.new_protocol(image::DynamicImage::ImageRgb8(scaled), cells, Resize::Fit(None))?)
}

/// Starts the thumbnail worker: (key, size) in, `(key, size, protocol)` to `sink`; dataset
/// ids are looked up in `paths`.
pub fn spawn(
    picker: Picker,
    paths: Vec<PathBuf>,
    opts: DecodeOptions,
    sink: impl Fn(ThumbKey, Size, Protocol) -> bool + Send + 'static,
) -> Sender<(ThumbKey, Size)> {
    let (tx, rx) = unbounded::<(ThumbKey, Size)>();
    std::thread::spawn(move || {
        let mut kept: HashMap<ThumbKey, RgbImage> = HashMap::new();
        let mut order: VecDeque<ThumbKey> = VecDeque::new();
        for (key, size) in rx {
            if !kept.contains_key(&key) {
                let path = match &key {
                    ThumbKey::Image(id) => paths.get(*id as usize).cloned(),
                    ThumbKey::Outside(p) => Some(p.clone()),
                };
                // An image that cannot be drawn keeps its placeholder; the engine reports why.
                let Some(Ok(img)) = path.map(|p| small(&p, &opts)) else { continue };
                if order.len() == KEEP {
                    if let Some(old) = order.pop_front() {
                        kept.remove(&old);
                    }
                }
                order.push_back(key.clone());
                kept.insert(key.clone(), img);
            }
            let Some(Ok(p)) = kept.get(&key).map(|img| encode(&picker, img, size)) else {
                continue;
            };
            if !sink(key, size, p) {
                return;
            }
        }
    });
    tx
}
