const c=require(process.argv[2]||"../dist/compat.js"); const t=require("typedarray-pool");
function loop(p,N){ for(let i=0;i<N;i++){ const x=p.mallocDouble(100); x[0]=i; p.freeDouble(x);} }
function loopR(p,N){ let s=1; for(let i=0;i<N;i++){ s=(s*1103515245+12345)&0x7fffffff; const x=p.mallocDouble(1+(s%4096)); x[0]=i; p.freeDouble(x);} }
function time(f,p,N){ const s=process.hrtime.bigint(); f(p,N); return Number(process.hrtime.bigint()-s)/N; }
const med=a=>{a=[...a].sort((x,y)=>x-y);return a[a.length>>1]};
for (const [name,f] of [['same',loop],['random',loopR]]) { const A=[],B=[]; for(let r=0;r<21;r++){ A.push(time(f,c,5e5)); B.push(time(f,t,5e5)); }
console.log(name, 'compat', med(A).toFixed(1), 'tap', med(B).toFixed(1), 'ratio', (med(B)/med(A)).toFixed(2)); }
