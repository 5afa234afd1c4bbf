//! CUDA backend (feature `cuda`): device context, storage, cuDNN/cuBLAS and our kernels.
