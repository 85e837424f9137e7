//! `drover check`: validation without connecting.
