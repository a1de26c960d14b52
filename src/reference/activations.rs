use crate::nn::Activation;

pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Twin of `activate` in shaders/common.wgsl.
pub fn activate(x: f64, act: Activation) -> f64 {
    match act {
        Activation::Identity => x,
        Activation::Relu => x.max(0.0),
        Activation::LeakyRelu(slope) => {
            if x > 0.0 {
                x
            } else {
                x * f64::from(slope)
            }
        }
        Activation::Sigmoid => sigmoid(x),
        Activation::Tanh => x.clamp(-15.0, 15.0).tanh(),
    }
}

/// Twin of `activate_grad_from_output`: d act / dx written through y = act(x).
pub fn activate_grad_from_output(y: f64, act: Activation) -> f64 {
    match act {
        Activation::Identity => 1.0,
        Activation::Relu => f64::from(u8::from(y > 0.0)),
        Activation::LeakyRelu(slope) => {
            if y > 0.0 {
                1.0
            } else {
                f64::from(slope)
            }
        }
        Activation::Sigmoid => y * (1.0 - y),
        Activation::Tanh => 1.0 - y * y,
    }
}
