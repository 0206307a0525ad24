//! Linux capabilities in all five sets.
