// bench_ort.js - ONNX Runtime's images/s on one model, for bench_onnxruntime.sh.
// Usage: node bench_ort.js MODEL.onnx BATCH SECONDS SIZE
// Prints one JSON line like resnetd bench: median ms per batch over repeats
// after warm-up, 2 intra-op threads, sequential, all graph optimisations.
'use strict';
const ort = require('onnxruntime-node');

async function main() {
    const [model, batchArg, secondsArg, sizeArg] = process.argv.slice(2);
    const batch = parseInt(batchArg, 10), seconds = parseFloat(secondsArg);
    const size = parseInt(sizeArg, 10);
    const session = await ort.InferenceSession.create(model, {
        intraOpNumThreads: 2, interOpNumThreads: 1,
        executionMode: 'sequential', graphOptimizationLevel: 'all',
    });
    const data = new Float32Array(batch * 3 * size * size);
    for (let i = 0; i < data.length; i++) data[i] = Math.sin(i) * 2;
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, [batch, 3, size, size]) };
    for (let i = 0; i < 2; i++) await session.run(feeds); // warm-up
    const times = [];
    const end = performance.now() + seconds * 1000;
    while (times.length < 3 || (performance.now() < end && times.length < 1000)) {
        const t0 = performance.now();
        await session.run(feeds);
        times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const ms = times[Math.floor(times.length / 2)];
    console.log(JSON.stringify({
        model, batch, repeats: times.length, ms_per_batch: +ms.toFixed(3),
        images_per_second: +(batch * 1000 / ms).toFixed(2),
        peak_rss_mb: +(process.resourceUsage().maxRSS / 1024).toFixed(1),
    }));
}

main().catch((e) => { console.error('bench_ort.js:', e.message); process.exit(1); });
