//! The MySQL side of the front: the real server's greeting (with TLS offered) → the client's
//! SSL request → TLS → its handshake response → `mysql_clear_password` for IAM users, as
//! Aurora asks → the token → a login to the real server as that user → its OK, then bytes
//! both ways.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::Shared;

const CLIENT_CONNECT_WITH_DB: u32 = 0x8;
const CLIENT_SSL: u32 = 0x800;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;
const CLIENT_CONNECT_ATTRS: u32 = 0x10_0000;
const CLIENT_LENENC_DATA: u32 = 0x20_0000;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

async fn read_packet<S: AsyncRead + Unpin>(s: &mut S) -> Res<(u8, Vec<u8>)> {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
    let mut body = vec![0; len];
    s.read_exact(&mut body).await?;
    Ok((head[3], body))
}

async fn write_packet<S: AsyncWrite + Unpin>(s: &mut S, seq: u8, body: &[u8]) -> Res<()> {
    let len = (body.len() as u32).to_le_bytes();
    let mut out = vec![len[0], len[1], len[2], seq];
    out.extend_from_slice(body);
    s.write_all(&out).await?;
    s.flush().await?;
    Ok(())
}

fn access_denied(user: &str) -> Vec<u8> {
    let mut body = vec![0xff];
    body.extend_from_slice(&1045u16.to_le_bytes());
    body.extend_from_slice(b"#28000");
    body.extend_from_slice(format!("Access denied for user '{user}'@'127.0.0.1' (using password: YES)").as_bytes());
    body
}

fn nul_str(buf: &[u8], pos: &mut usize) -> String {
    let end = buf[*pos..].iter().position(|b| *b == 0).map_or(buf.len(), |e| *pos + e);
    let s = String::from_utf8_lossy(&buf[*pos..end]).into_owned();
    *pos = (end + 1).min(buf.len());
    s
}

pub(super) async fn serve(mut socket: TcpStream, tls: TlsAcceptor, shared: Arc<Shared>) -> Res<()> {
    let mut upstream = TcpStream::connect(shared.cfg.upstream).await?;
    upstream.set_nodelay(true)?;
    let (_, mut greeting) = read_packet(&mut upstream).await?;
    // Capability flags (lower half) follow the version string, the connection id (4), the
    // first scramble part (8) and a filler (1).
    let version_end = 1 + greeting[1..].iter().position(|b| *b == 0).ok_or("greeting")?;
    let caps_at = version_end + 1 + 4 + 8 + 1;
    let upstream_caps = u32::from(u16::from_le_bytes([greeting[caps_at], greeting[caps_at + 1]]))
        | u32::from(u16::from_le_bytes([greeting[caps_at + 5], greeting[caps_at + 6]])) << 16;
    greeting[caps_at + 1] |= (CLIENT_SSL >> 8) as u8;
    write_packet(&mut socket, 0, &greeting).await?;

    let (_, ssl_request) = read_packet(&mut socket).await?;
    let caps = u32::from_le_bytes(ssl_request[..4].try_into()?);
    if caps & CLIENT_SSL == 0 {
        let mut body = vec![0xff];
        body.extend_from_slice(&3159u16.to_le_bytes());
        body.extend_from_slice(b"#HY000Connections using insecure transport are prohibited");
        return write_packet(&mut socket, 2, &body).await;
    }
    let mut client = tls.accept(socket).await?;
    let (seq, response) = read_packet(&mut client).await?;
    let caps = u32::from_le_bytes(response[..4].try_into()?);
    let mut pos = 32;
    let user = nul_str(&response, &mut pos);
    let auth_len = if caps & CLIENT_LENENC_DATA != 0 || caps & CLIENT_SECURE_CONNECTION != 0 {
        let n = response.get(pos).copied().unwrap_or(0) as usize;
        pos += 1;
        n
    } else {
        nul_str(&response, &mut pos);
        0
    };
    pos += auth_len;
    let database = if caps & CLIENT_CONNECT_WITH_DB != 0 { Some(nul_str(&response, &mut pos)) } else { None };

    if !shared.cfg.iam_users.contains(&user) {
        // Not an IAM user: the server checks a password hash the token cannot match.
        return write_packet(&mut client, seq + 1, &access_denied(&user)).await;
    }
    let mut switch = vec![0xfe];
    switch.extend_from_slice(b"mysql_clear_password\0");
    write_packet(&mut client, seq + 1, &switch).await?;
    let (seq, password) = read_packet(&mut client).await?;
    let token = String::from_utf8_lossy(password.strip_suffix(&[0]).unwrap_or(&password)).into_owned();
    if !shared.check(&user, &token) {
        return write_packet(&mut client, seq + 1, &access_denied(&user)).await;
    }

    // Log in upstream as the same user (no password there), with the client's capabilities.
    let up_caps = (caps & upstream_caps) & !(CLIENT_SSL | CLIENT_CONNECT_ATTRS | CLIENT_LENENC_DATA);
    let mut login = up_caps.to_le_bytes().to_vec();
    login.extend_from_slice(&response[4..32]);
    login.extend_from_slice(user.as_bytes());
    login.push(0);
    login.push(0); // empty auth response
    if let Some(db) = &database
        && up_caps & CLIENT_CONNECT_WITH_DB != 0
    {
        login.extend_from_slice(db.as_bytes());
        login.push(0);
    }
    if up_caps & CLIENT_PLUGIN_AUTH != 0 {
        login.extend_from_slice(b"mysql_native_password\0");
    }
    write_packet(&mut upstream, 1, &login).await?;
    let mut up_seq;
    let answer = loop {
        let (s, body) = read_packet(&mut upstream).await?;
        up_seq = s;
        if body.first() == Some(&0xfe) {
            write_packet(&mut upstream, up_seq + 1, &[]).await?;
            continue;
        }
        break body;
    };
    write_packet(&mut client, seq + 1, &answer).await?;
    if answer.first() != Some(&0x00) {
        return Ok(());
    }
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
