//! Which kernels an adapter runs: the matmul family, and whether convolutions run as implicit
//! products. Fixed per adapter (by rule, by a remembered timing: src/train/tune.rs, or by the
//! environment), so a seed gives the same arithmetic, bit for bit, every run.

use super::error::GpuError;

/// Which matmul kernels to prefer. Fixed per adapter (by rule, or by a one-time timing that
/// is remembered: src/train/tune.rs), so a seed gives the same arithmetic, bit for bit, every
/// run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatmulImpl {
    /// Workgroup-memory tiles (shaders/matmul.wgsl): the shape GPUs favour.
    Tiled,
    /// No workgroup memory, vec4 loads (shaders/matmul_vec4.wgsl): ~3× the tiled kernel on
    /// lavapipe, whose barriers are costly. Used where shapes are multiples of 4.
    Vec4,
    /// 8-lane subgroups sharing loads by broadcast (shaders/matmul_subgroup.wgsl): ~3× vec4
    /// on lavapipe, whose every load is a loop over the lanes. Falls back to vec4, then tiled,
    /// where a shape does not fit.
    Subgroup,
}

impl MatmulImpl {
    /// `WGEN_MATMUL=tiled|vec4|subgroup` if set, else subgroup on CPU adapters that can run it,
    /// vec4 on other CPU adapters and tiled elsewhere, until the tuner (src/train/tune.rs)
    /// settles it.
    pub(super) fn for_adapter(info: &wgpu::AdapterInfo, features: wgpu::Features, subgroup_ok: bool) -> Result<MatmulImpl, GpuError> {
        match std::env::var("WGEN_MATMUL").as_deref() {
            Ok("tiled") => Ok(MatmulImpl::Tiled),
            Ok("vec4") => Ok(MatmulImpl::Vec4),
            Ok("subgroup") if subgroup_ok => Ok(MatmulImpl::Subgroup),
            Ok("subgroup") => Err(GpuError::Unsupported {
                what: format!(
                    "WGEN_MATMUL=subgroup needs subgroups exactly 8 lanes wide; {} has {}..={} lanes{}",
                    info.name,
                    info.subgroup_min_size,
                    info.subgroup_max_size,
                    if features.contains(wgpu::Features::SUBGROUP) { "" } else { " and no subgroup support" }
                ),
                fix: "unset WGEN_MATMUL or set it to tiled or vec4".into(),
            }),
            Ok(other) if !other.is_empty() && other != "tune" => Err(GpuError::Unsupported {
                what: format!("WGEN_MATMUL={other} names no matmul kernel family"),
                fix: "set it to tiled, vec4, subgroup or tune, or unset it".into(),
            }),
            _ if info.device_type == wgpu::DeviceType::Cpu && subgroup_ok => Ok(MatmulImpl::Subgroup),
            _ if info.device_type == wgpu::DeviceType::Cpu => Ok(MatmulImpl::Vec4),
            _ => Ok(MatmulImpl::Tiled),
        }
    }
}

/// Whether shaders/matmul_subgroup.wgsl can run: its one-subgroup workgroups of 8 lanes
/// broadcast from lanes 0..7.
pub(super) fn subgroups_fit(info: &wgpu::AdapterInfo, features: wgpu::Features) -> bool {
    features.contains(wgpu::Features::SUBGROUP) && info.subgroup_min_size == 8 && info.subgroup_max_size == 8
}

/// `WGEN_CONV=implicit|im2col|tune`: whether convolutions may run as implicit products where
/// the subgroup family runs (the default, and with `tune`, which times both paths per layer
/// shape: `train::settle_conv`) or stay on im2col.
pub(super) fn implicit_conv_wanted() -> Result<bool, GpuError> {
    match std::env::var("WGEN_CONV").as_deref() {
        Ok("im2col") => Ok(false),
        Ok("implicit") | Ok("tune") | Ok("") | Err(_) => Ok(true),
        Ok(other) => Err(GpuError::Unsupported {
            what: format!("WGEN_CONV={other} names no convolution path"),
            fix: "set it to implicit, im2col or tune, or unset it".into(),
        }),
    }
}
