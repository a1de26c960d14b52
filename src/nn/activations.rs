use std::fmt;
use std::str::FromStr;

/// The activations the kernels fuse into their epilogues; ids match shaders/common.wgsl.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Identity,
    Relu,
    LeakyRelu(f32),
    Sigmoid,
    Tanh,
}

impl Activation {
    pub fn id(self) -> u32 {
        match self {
            Activation::Identity => 0,
            Activation::Relu => 1,
            Activation::LeakyRelu(_) => 2,
            Activation::Sigmoid => 3,
            Activation::Tanh => 4,
        }
    }

    pub fn slope(self) -> f32 {
        match self {
            Activation::LeakyRelu(s) => s,
            _ => 0.0,
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activation::Identity => f.write_str("identity"),
            Activation::Relu => f.write_str("relu"),
            Activation::LeakyRelu(s) => write!(f, "leaky_relu:{s}"),
            Activation::Sigmoid => f.write_str("sigmoid"),
            Activation::Tanh => f.write_str("tanh"),
        }
    }
}

impl FromStr for Activation {
    type Err = String;

    /// `identity`, `relu`, `leaky_relu` (slope 0.2) or `leaky_relu:SLOPE`, `sigmoid`, `tanh`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, arg) = s.split_once(':').map_or((s, None), |(a, b)| (a, Some(b)));
        let act = match (name, arg) {
            ("identity", None) => Activation::Identity,
            ("relu", None) => Activation::Relu,
            ("sigmoid", None) => Activation::Sigmoid,
            ("tanh", None) => Activation::Tanh,
            ("leaky_relu", None) => Activation::LeakyRelu(0.2),
            ("leaky_relu", Some(slope)) => {
                let slope: f32 = slope
                    .parse()
                    .map_err(|_| format!("leaky_relu slope `{slope}` is not a number"))?;
                if !(slope > 0.0 && slope < 1.0) {
                    return Err(format!("leaky_relu slope must be in (0, 1), got {slope}"));
                }
                Activation::LeakyRelu(slope)
            }
            _ => {
                return Err(format!(
                    "unknown activation `{s}`; expected identity, relu, leaky_relu[:SLOPE], sigmoid or tanh"
                ))
            }
        };
        Ok(act)
    }
}

impl serde::Serialize for Activation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Activation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
