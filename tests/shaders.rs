//! Every kernel file is parsed and validated by naga, then translated by the SPIR-V, MSL and
//! HLSL back ends, so Metal and DX12 users are covered without those GPUs. Needs no adapter.

use wgen::gpu::{module_source, Kernel, SHADER_FILES};

fn validate(name: &str) -> (naga::Module, naga::valid::ModuleInfo) {
    let source = module_source(name).unwrap();
    let module = naga::front::wgsl::parse_str(&source)
        .unwrap_or_else(|e| panic!("{name}.wgsl does not parse:\n{}", e.emit_to_string(&source)));
    // Only the subgroup kernels need a capability; wgen compiles them only where the adapter has it.
    let capabilities = if name.ends_with("_subgroup") { naga::valid::Capabilities::SUBGROUP } else { naga::valid::Capabilities::empty() };
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}.wgsl does not validate:\n{}", e.emit_to_string(&source)));
    (module, info)
}

#[test]
fn every_shader_validates_with_naga() {
    for (name, _) in SHADER_FILES {
        validate(name);
    }
}

#[test]
fn every_shader_translates_to_spirv() {
    for (name, _) in SHADER_FILES {
        let (module, info) = validate(name);
        naga::back::spv::write_vec(&module, &info, &naga::back::spv::Options::default(), None)
            .unwrap_or_else(|e| panic!("{name}.wgsl → SPIR-V: {e}"));
    }
}

#[test]
fn every_shader_translates_to_msl() {
    for (name, _) in SHADER_FILES {
        let (module, info) = validate(name);
        let pipeline = naga::back::msl::PipelineOptions::default();
        // Subgroup (SIMD-group) functions need MSL 2.1, which every Metal GPU wgpu supports has.
        let options = naga::back::msl::Options { lang_version: (2, 1), ..Default::default() };
        naga::back::msl::write_string(&module, &info, &options, &pipeline)
            .unwrap_or_else(|e| panic!("{name}.wgsl → MSL: {e}"));
    }
}

#[test]
fn every_shader_translates_to_hlsl() {
    for (name, _) in SHADER_FILES {
        let (module, info) = validate(name);
        let mut out = String::new();
        // Wave intrinsics need shader model 6.0, which wgpu's DX12 back end targets anyway.
        let options = naga::back::hlsl::Options { shader_model: naga::back::hlsl::ShaderModel::V6_0, ..Default::default() };
        let pipeline = naga::back::hlsl::PipelineOptions::default();
        naga::back::hlsl::Writer::new(&mut out, &options, &pipeline)
            .write(&module, &info, None)
            .unwrap_or_else(|e| panic!("{name}.wgsl → HLSL: {e}"));
        assert!(out.contains("numthreads"), "{name}: HLSL has no compute entry point");
    }
}

#[test]
fn every_kernel_names_an_entry_point_of_its_file() {
    for &kernel in Kernel::ALL {
        let (file, entry) = kernel.location();
        let (module, _) = validate(file);
        assert!(module.entry_points.iter().any(|e| e.name == entry), "{file}.wgsl has no entry point {entry}");
    }
}

#[test]
fn each_shader_begins_with_its_bindings_and_grid() {
    for (name, body) in SHADER_FILES {
        let header: String = body.lines().take_while(|l| l.starts_with("//")).collect::<Vec<_>>().join("\n");
        assert!(header.contains("Bindings:") && header.contains("Grid:"), "{name}.wgsl: header must list bindings and grid");
    }
}

/// Each params struct's WGSL size is its `#[repr(C)]` twin's: a field added on one side only
/// shifts every later field the kernel reads.
#[test]
fn every_params_struct_has_the_size_of_its_rust_twin() {
    use std::mem::size_of;
    use wgen::nn::*;
    let twins = [
        ("adam", "AdamParams", size_of::<AdamParams>()),
        ("augment", "ShiftParams", size_of::<ShiftParams>()),
        ("diff_augment", "AugmentParams", size_of::<AugmentParams>()),
        ("ema", "EmaParams", size_of::<EmaParams>()),
        ("batchnorm", "BatchNormParams", size_of::<BatchnormParams>()),
        ("bce_logits", "BceParams", size_of::<BceParams>()),
        ("matmul", "MatmulParams", size_of::<MatmulParams>()),
        ("matmul", "Step", size_of::<Step>()),
        ("conv", "ConvParams", size_of::<ConvParams>()),
        ("conv_subgroup", "ConvGemmParams", size_of::<ConvGemmParams>()),
        ("embedding", "EmbedParams", size_of::<EmbedParams>()),
        ("gan_loss", "GanLossParams", size_of::<GanLossParams>()),
        ("gather", "GatherParams", size_of::<GatherParams>()),
        ("iwae", "IwaeParams", size_of::<IwaeParams>()),
        ("random", "RngParams", size_of::<RngParams>()),
        ("reparam_kl", "KlParams", size_of::<KlParams>()),
        ("softmax_xent", "XentParams", size_of::<XentParams>()),
        ("spectral_norm", "SpectralParams", size_of::<SpectralParams>()),
        ("sum_accumulate", "SumParams", size_of::<SumParams>()),
    ];
    for (file, name, rust) in twins {
        let (module, _) = validate(file);
        let span = module
            .types
            .iter()
            .find_map(|(_, ty)| match (&ty.name, &ty.inner) {
                (Some(n), naga::TypeInner::Struct { span, .. }) if n == name => Some(*span as usize),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{file}.wgsl declares no struct {name}"));
        assert_eq!(span, rust, "{file}.wgsl: {name} is {span} bytes, its Rust twin {rust}");
    }
}
