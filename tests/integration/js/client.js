'use strict'
// An MQTT.js client driven line by line from standard input.
//
// Each input line is a JSON command; each output line is a JSON event, so the
// integration tests can use MQTT.js the same way they use paho:
//
//   {"cmd":"connect","url":"mqtt://127.0.0.1:1883","options":{"clientId":"a","clean":true}}
//   {"cmd":"subscribe","topic":"a/#","qos":1}
//   {"cmd":"unsubscribe","topic":"a/#"}
//   {"cmd":"publish","topic":"a/b","payload":"hello","qos":1,"retain":false}
//
// MQTT 5 (options.protocolVersion 5): connect options may carry "properties";
// subscribe may add "nl", "rap", "rh" and "properties"; publish may add "properties"
// (correlationData as a string). Connect and message events then carry the packet's
// properties (Buffers as strings), and a DISCONNECT from the broker is a "disconnect"
// event with its reasonCode.
//   {"cmd":"end"}          clean DISCONNECT, then exit
//   {"cmd":"destroy"}      drop the TCP connection without DISCONNECT, then exit
//
// Events: connect, suback, unsuback, published, message, disconnect, error, close, exit.
// The client never reconnects by itself. End of input behaves like "destroy".

const mqtt = require('mqtt')
const readline = require('readline')

let client = null
let exiting = false

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function finish (code) {
  if (exiting) return
  exiting = true
  emit({ event: 'exit' })
  // Let stdout drain before leaving.
  process.stdout.write('', () => process.exit(code))
}

// Properties as JSON: Buffers (correlation data) become strings.
function plain (props) {
  if (!props) return {}
  const out = {}
  for (const [k, v] of Object.entries(props)) out[k] = Buffer.isBuffer(v) ? v.toString('utf8') : v
  return out
}

function withBuffers (props) {
  if (!props) return undefined
  const out = Object.assign({}, props)
  if (typeof out.correlationData === 'string') out.correlationData = Buffer.from(out.correlationData)
  return out
}

function connect (cmd) {
  const options = Object.assign({
    reconnectPeriod: 0,
    connectTimeout: 5000,
    protocolVersion: 4
  }, cmd.options || {})
  client = mqtt.connect(cmd.url, options)
  client.on('connect', (connack) => {
    const ev = {
      event: 'connect',
      sessionPresent: !!connack.sessionPresent,
      returnCode: connack.returnCode === undefined ? 0 : connack.returnCode
    }
    if (connack.reasonCode !== undefined) ev.reasonCode = connack.reasonCode
    if (connack.properties) ev.properties = plain(connack.properties)
    emit(ev)
  })
  client.on('disconnect', (packet) => {
    emit({ event: 'disconnect', reasonCode: packet.reasonCode, properties: plain(packet.properties) })
  })
  client.on('message', (topic, payload, packet) => {
    emit({
      event: 'message',
      topic,
      payload: payload.toString('utf8'),
      qos: packet.qos,
      retain: !!packet.retain,
      dup: !!packet.dup,
      messageId: packet.messageId === undefined ? null : packet.messageId,
      properties: packet.properties ? plain(packet.properties) : null
    })
  })
  client.on('error', (err) => {
    emit({ event: 'error', code: err.code === undefined ? null : err.code, message: String(err.message) })
  })
  client.on('close', () => emit({ event: 'close' }))
}

function handle (line) {
  if (!line.trim()) return
  let cmd
  try {
    cmd = JSON.parse(line)
  } catch (e) {
    emit({ event: 'error', code: 'bad-command', message: String(e) })
    return
  }
  switch (cmd.cmd) {
    case 'connect':
      connect(cmd)
      break
    case 'subscribe': {
      const opts = { qos: cmd.qos || 0 }
      for (const k of ['nl', 'rap', 'rh', 'properties']) if (cmd[k] !== undefined) opts[k] = cmd[k]
      client.subscribe(cmd.topic, opts, (err, granted) => {
        if (err) emit({ event: 'error', code: 'subscribe', message: String(err.message) })
        else emit({ event: 'suback', topic: cmd.topic, granted: granted.map((g) => g.qos) })
      })
      break
    }
    case 'unsubscribe':
      client.unsubscribe(cmd.topic, (err) => {
        if (err) emit({ event: 'error', code: 'unsubscribe', message: String(err.message) })
        else emit({ event: 'unsuback', topic: cmd.topic })
      })
      break
    case 'publish': {
      const payload = cmd.payload === undefined ? '' : cmd.payload
      const opts = { qos: cmd.qos || 0, retain: !!cmd.retain }
      if (cmd.properties) opts.properties = withBuffers(cmd.properties)
      client.publish(cmd.topic, payload, opts, (err) => {
        if (err) emit({ event: 'error', code: 'publish', reasonCode: err.code === undefined ? null : err.code, message: String(err.message) })
        else emit({ event: 'published', topic: cmd.topic, payload })
      })
      break
    }
    case 'end':
      if (!client) return finish(0)
      client.end(false, {}, () => finish(0))
      break
    case 'destroy':
      if (client && client.stream) client.stream.destroy()
      finish(0)
      break
    default:
      emit({ event: 'error', code: 'bad-command', message: 'unknown command ' + cmd.cmd })
  }
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', handle)
rl.on('close', () => {
  if (client && client.stream) client.stream.destroy()
  finish(0)
})
