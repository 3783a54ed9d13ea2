//! The glue between the generated `Guest` trait and [`Plugin`]: one plugin value per instance.

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::__private::tollgate::plugin::types as raw;
use crate::__private::{Guest, Request as RawRequest, Response as RawResponse};
use crate::{Action, LogEntry, Plugin, Request, Response, parse_config};

/// The phase methods of a [`Plugin`], object-safe so one instance-global slot can hold any
/// plugin type.
trait Dispatch {
    fn on_request(&self, req: &Request<'_>) -> Action;
    fn on_response(&self, req: &Request<'_>, resp: &Response<'_>) -> Action;
    fn on_log(&self, entry: &LogEntry);
}

impl<P: Plugin> Dispatch for P {
    fn on_request(&self, req: &Request<'_>) -> Action {
        Plugin::on_request(self, req)
    }
    fn on_response(&self, req: &Request<'_>, resp: &Response<'_>) -> Action {
        Plugin::on_response(self, req, resp)
    }
    fn on_log(&self, entry: &LogEntry) {
        Plugin::on_log(self, entry)
    }
}

thread_local! {
    // Wasm instances are single-threaded: this is simply "the plugin of this instance".
    static INSTANCE: RefCell<Option<Box<dyn Dispatch>>> = const { RefCell::new(None) };
}

fn with_instance<R>(phase: &str, f: impl FnOnce(&dyn Dispatch) -> R) -> R {
    INSTANCE.with(|slot| {
        let slot = slot.borrow();
        match slot.as_deref() {
            Some(plugin) => f(plugin),
            // The host never does this; trapping with a message beats answering on a plugin's
            // behalf, because the host's `on_error` policy then decides what the client sees.
            None => panic!("tollgate-sdk: `{phase}` was called before a successful `init`"),
        }
    })
}

/// Implements the generated `Guest` trait for a [`Plugin`] type. Used by
/// [`crate::export_plugin!`].
pub struct Exporter<P>(PhantomData<P>);

impl<P: Plugin> Guest for Exporter<P> {
    fn init(config: String) -> Result<raw::Capabilities, String> {
        let config = parse_config::<P::Config>(&config)?;
        let plugin = P::init(config)?;
        let capabilities = plugin.capabilities();
        INSTANCE.with(|slot| *slot.borrow_mut() = Some(Box::new(plugin)));
        Ok(capabilities.into())
    }

    fn on_request(req: &RawRequest) -> raw::Action {
        with_instance("on-request", |p| p.on_request(&Request::new(req))).into()
    }

    fn on_response(req: &RawRequest, resp: &RawResponse) -> raw::Action {
        with_instance("on-response", |p| {
            p.on_response(&Request::new(req), &Response::new(resp))
        })
        .into()
    }

    fn on_log(entry: raw::LogEntry) {
        with_instance("on-log", |p| p.on_log(&entry.into()))
    }
}
