//! `settings` values: an RC-wide setting's [`SettingValue`] (the OAuth Proxy's host and services). One layout so
//! far, version 1.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::provider::SettingValue;
use crate::store::codec::{Body, Record};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SettingV1 {
    Bool(bool),
    Str(String),
}

impl Record for SettingValue {
    const VERSION: u8 = 1;
    type Disk = SettingV1;

    fn upgrade(body: Body<'_>) -> Result<SettingV1> {
        match body.version() {
            1 => body.read(),
            _ => body.unknown(),
        }
    }
}

impl From<SettingValue> for SettingV1 {
    fn from(v: SettingValue) -> Self {
        match v {
            SettingValue::Bool(b) => Self::Bool(b),
            SettingValue::Str(s) => Self::Str(s),
        }
    }
}

impl From<SettingV1> for SettingValue {
    fn from(v: SettingV1) -> Self {
        match v {
            SettingV1::Bool(b) => Self::Bool(b),
            SettingV1::Str(s) => Self::Str(s),
        }
    }
}
