const c=require("../dist/compat.js");
function loop(p,N){ for(let i=0;i<N;i++){ const x=p.mallocDouble(100); x[0]=i; p.freeDouble(x);} }
for(let r=0;r<20;r++) loop(c,5e5);
