//! The container's root filesystem: mounts, /dev, pivot_root, masked and read-only paths.
