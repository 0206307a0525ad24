//! OCI hooks of every phase, with the container state on stdin and their timeouts.
