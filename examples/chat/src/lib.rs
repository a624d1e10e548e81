//! Example chat protocol built on Courier (filled in by the codegen example).
