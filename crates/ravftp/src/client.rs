//! The FTP client side: log in with issued credentials, upload and download whole files in
//! binary mode; over explicit FTPS (`AUTH TLS`, then protected data connections) when given a
//! TLS configuration, which a client passes exactly when it reaches ravsock over `https://`.

use ravproto::messages::FtpCredentials;
use ravproto::{TensorReceiver, Value};
use std::sync::Arc;
use suppaftp::tokio::{AsyncRustlsConnector, AsyncRustlsFtpStream};
use suppaftp::types::FileType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Why a transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum FtpError {
    /// Connecting, logging in or a command failed.
    #[error("ftp {action}: {message}")]
    Ftp {
        /// What was being done.
        action: &'static str,
        /// The server's or the network's answer.
        message: String,
        /// Whether the server went away or asked to be tried later (the connection was
        /// refused or cut, a 4xx answer), rather than refusing the request.
        transient: bool,
    },
    /// The file does not hold one encoded value.
    #[error("ftp file {name}: {reason}")]
    BadValue {
        /// The file.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file name that could leave the home directory.
    #[error("invalid ftp file name {0:?}")]
    BadName(String),
    /// The file's length is not the announced one.
    #[error("ftp file {name}: expected {expected} bytes, got {got}")]
    Length {
        /// The file.
        name: String,
        /// Announced.
        expected: u64,
        /// Received.
        got: u64,
    },
}

fn ftp_err(action: &'static str) -> impl FnOnce(suppaftp::FtpError) -> FtpError {
    move |e| {
        // 4xx is FTP's "try again later" (421 closing, 425/426 data connection, 450/451 local
        // trouble); a cut or garbled control connection is a server going away.
        // A refused certificate (SecureError) is not transient: waiting will not fix it.
        let transient = match &e {
            suppaftp::FtpError::ConnectionError(_) | suppaftp::FtpError::BadResponse => true,
            suppaftp::FtpError::UnexpectedResponse(response) => (400..500).contains(&response.status.code()),
            _ => false,
        };
        FtpError::Ftp { action, message: e.to_string(), transient }
    }
}

/// The data connection failed: the network's or the server's doing, never the request's.
fn io_err(action: &'static str) -> impl FnOnce(std::io::Error) -> FtpError {
    move |e| FtpError::Ftp { action, message: e.to_string(), transient: true }
}

impl FtpError {
    /// Whether the same transfer may succeed if tried again from a new session: the server
    /// could not be reached, went away mid-transfer (a file that ends early is one cut off) or
    /// asked to be tried later. A refused login, a bad name or a bad value is not.
    pub fn is_transient(&self) -> bool {
        match self {
            FtpError::Ftp { transient, .. } => *transient,
            FtpError::Length { expected, got, .. } => got < expected,
            FtpError::BadValue { .. } | FtpError::BadName(_) => false,
        }
    }
}

/// A logged-in FTP session.
pub struct FtpClient {
    // The rustls stream type also speaks plain FTP until `into_secure`.
    stream: AsyncRustlsFtpStream,
}

impl std::fmt::Debug for FtpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FtpClient").finish_non_exhaustive()
    }
}

impl FtpClient {
    /// Connects to `host:credentials.port`, with `tls` secures the session (checking the
    /// server's certificate for `host`), and logs in (binary mode).
    pub async fn connect(
        host: &str,
        credentials: &FtpCredentials,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<FtpClient, FtpError> {
        let mut stream = AsyncRustlsFtpStream::connect((host, credentials.port)).await.map_err(ftp_err("connect"))?;
        if let Some(config) = tls {
            let connector = AsyncRustlsConnector::from(tokio_rustls::TlsConnector::from(config));
            stream = stream.into_secure(connector, host).await.map_err(ftp_err("TLS"))?;
        }
        stream.login(credentials.user.as_str(), credentials.password.as_str()).await.map_err(ftp_err("login"))?;
        // suppaftp defaults to ASCII mode, which rewrites LF bytes.
        stream.transfer_type(FileType::Binary).await.map_err(ftp_err("binary mode"))?;
        Ok(FtpClient { stream })
    }

    /// Stores `bytes` as `name` in the home directory.
    pub async fn put(&mut self, name: &str, bytes: &[u8]) -> Result<(), FtpError> {
        self.put_parts(name, &[bytes]).await
    }

    /// Stores the concatenation of `parts` as `name` (a value's header and its data, sent
    /// from where they are).
    pub async fn put_parts(&mut self, name: &str, parts: &[&[u8]]) -> Result<(), FtpError> {
        check_name(name)?;
        let mut upload = self.stream.put_with_stream(name).await.map_err(ftp_err("upload"))?;
        for part in parts {
            upload.write_all(part).await.map_err(io_err("upload"))?;
        }
        upload.finish().await.map_err(ftp_err("upload"))?;
        Ok(())
    }

    /// Stores `value` in its binary encoding as `name`; a tensor's data goes out from its own
    /// buffer.
    pub async fn put_value(&mut self, name: &str, value: &Value) -> Result<(), FtpError> {
        match value {
            Value::Tensor(tensor) => {
                let header = Value::tensor_header(tensor.dtype(), tensor.shape());
                self.put_parts(name, &[&header, tensor.bytes()]).await
            }
            Value::List(_) => self.put(name, &value.encode_binary()).await,
        }
    }

    /// Reads `name` from the home directory; `expected_len` sizes the buffer and is checked.
    pub async fn get(&mut self, name: &str, expected_len: u64) -> Result<Vec<u8>, FtpError> {
        check_name(name)?;
        let mut download = self.stream.retr_as_stream(name).await.map_err(ftp_err("download"))?;
        let mut bytes = Vec::with_capacity(usize::try_from(expected_len).unwrap_or(0).min(1 << 32));
        download.read_to_end(&mut bytes).await.map_err(io_err("download"))?;
        download.finish().await.map_err(ftp_err("download"))?;
        if bytes.len() as u64 != expected_len {
            return Err(FtpError::Length { name: name.to_string(), expected: expected_len, got: bytes.len() as u64 });
        }
        Ok(bytes)
    }

    /// Reads `name` as one encoded value of `expected_len` bytes. A tensor's data is read
    /// straight into its elements (no buffer of the encoding, no copy to align it).
    pub async fn get_value(&mut self, name: &str, expected_len: u64) -> Result<Value, FtpError> {
        check_name(name)?;
        let bad = |reason: String| FtpError::BadValue { name: name.to_string(), reason };
        let length = |got: u64| FtpError::Length { name: name.to_string(), expected: expected_len, got };
        let mut download = self.stream.retr_as_stream(name).await.map_err(ftp_err("download"))?;
        let mut header = Vec::with_capacity(ravproto::tensor::MAX_BINARY_HEADER + 1);
        (&mut download)
            .take(ravproto::tensor::VALUE_FIXED_HEADER as u64)
            .read_to_end(&mut header)
            .await
            .map_err(io_err("download"))?;
        let value = match Value::tensor_header_len(&header) {
            Some(Ok(header_len)) => {
                let missing = (header_len - header.len()) as u64;
                (&mut download).take(missing).read_to_end(&mut header).await.map_err(io_err("download"))?;
                if header.len() < header_len {
                    return Err(length(header.len() as u64));
                }
                let mut receiver = TensorReceiver::new(&header, expected_len).map_err(|e| bad(e.to_string()))?;
                let buffer = receiver.buffer();
                let mut filled = 0;
                while filled < buffer.len() {
                    match download.read(&mut buffer[filled..]).await.map_err(io_err("download"))? {
                        0 => return Err(length((header.len() + filled) as u64)),
                        n => filled += n,
                    }
                }
                let extra = tokio::io::copy(&mut download, &mut tokio::io::sink()).await.map_err(io_err("download"))?;
                if extra > 0 {
                    return Err(length(expected_len + extra));
                }
                receiver.finish().map_err(|e| bad(e.to_string()))?
            }
            Some(Err(error)) => return Err(bad(error.to_string())),
            None => {
                let mut bytes = header;
                download.read_to_end(&mut bytes).await.map_err(io_err("download"))?;
                if bytes.len() as u64 != expected_len {
                    return Err(length(bytes.len() as u64));
                }
                Value::decode_binary(&bytes).map_err(|e| bad(e.to_string()))?
            }
        };
        download.finish().await.map_err(ftp_err("download"))?;
        Ok(value)
    }

    /// Deletes `name` from the home directory.
    pub async fn delete(&mut self, name: &str) -> Result<(), FtpError> {
        check_name(name)?;
        self.stream.rm(name).await.map_err(ftp_err("delete"))
    }

    /// Sends a raw `RETR` for any path, checked by the server only (tests of confinement).
    pub async fn get_path(&mut self, path: &str) -> Result<Vec<u8>, FtpError> {
        let mut download = self.stream.retr_as_stream(path).await.map_err(ftp_err("download"))?;
        let mut bytes = Vec::new();
        download.read_to_end(&mut bytes).await.map_err(io_err("download"))?;
        download.finish().await.map_err(ftp_err("download"))?;
        Ok(bytes)
    }

    /// Logs out.
    pub async fn quit(mut self) {
        let _ = self.stream.quit().await;
    }
}

/// The host part of a ravsock URL (`http://host:port/...`): where its ravftp server listens.
pub fn host_of_url(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if let Some(bracketed) = authority.strip_prefix('[') {
        return bracketed.split(']').next().unwrap_or_default().to_string();
    }
    authority.split(':').next().unwrap_or_default().to_string()
}

fn check_name(name: &str) -> Result<(), FtpError> {
    if ravproto::files::valid_file_name(name) { Ok(()) } else { Err(FtpError::BadName(name.to_string())) }
}
