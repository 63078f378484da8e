//! `store::codec::decode` of arbitrary bytes as every record type the store keeps: what a damaged or hostile data
//! dir (or backup) can feed the server. Never panics or aborts (no allocation driven by a length prefix), and
//! whatever decodes re-encodes to a value that decodes equal.
#![no_main]

use latchkey::model::{App, Link, Provider, User};
use latchkey::store::codec::{decode, encode, Record};
use latchkey::store::token::FamilyRecord;
use latchkey::store::{CodeRecord, LoginToken, TokenRecord};
use libfuzzer_sys::fuzz_target;

fn check<T>(data: &[u8])
where
    T: Record + PartialEq + std::fmt::Debug,
{
    if let Ok(v) = decode::<T>(data) {
        let again: T = decode(&encode(&v)).expect("an encoded record decodes");
        assert_eq!(again, v);
    }
}

fuzz_target!(|data: &[u8]| {
    check::<App>(data);
    check::<User>(data);
    check::<Provider>(data);
    check::<Link>(data);
    check::<LoginToken>(data);
    check::<CodeRecord>(data);
    check::<TokenRecord>(data);
    check::<FamilyRecord>(data);
});
