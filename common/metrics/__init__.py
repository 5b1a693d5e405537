"""Full-reference metrics on (B,1,H,W) luma tensors; VMAF is optional (pip install 'dqa[vmaf]')."""
from .fr import gmsd, gmsd_map, ms_ssim, psnr, ssim, ssim_map
from .vmaf import VmafFeatures

__all__ = ["VmafFeatures", "gmsd", "gmsd_map", "ms_ssim", "psnr", "ssim", "ssim_map"]
