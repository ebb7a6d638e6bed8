//! Small tools the stages share, that know nothing of the pipeline.
pub mod glob;
pub mod sched;
pub mod secret;
pub mod throttle;

/// What a file that is not a regular file is, for the message refusing it;
/// `None` for a regular file.
pub fn file_kind(file_type: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt as _;
    if file_type.is_file() {
        None
    } else if file_type.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if file_type.is_socket() {
        Some("a socket")
    } else if file_type.is_char_device() {
        Some("a character device")
    } else if file_type.is_block_device() {
        Some("a block device")
    } else if file_type.is_dir() {
        Some("a directory")
    } else {
        Some("not a regular file")
    }
}
